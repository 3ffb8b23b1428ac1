/**
 * Reloading routes: app.gateway.reload swaps the table while requests in flight finish on the
 * old one; the file reloader rejects a bad file (every problem logged, old routes kept) and
 * applies a good one, found by fs.watch or polling.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import { ConfigReloader } from '../src/reloader.ts'
import { gatewayConfig, httpGet, startGateway } from './fixtures/gateway.ts'
import { startUpstream } from './fixtures/upstream.ts'

const NO_ISSUER = `http://127.0.0.1:${await freePort()}`

/** Polls `check`; the bound is generous, a loaded 2-core machine is many times slower. */
async function waitFor (check: () => Promise<boolean>, ms = 30_000): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return false
}

t.test('reload swaps the table; a request in flight finishes on the old one', async (t) => {
  const a = await startUpstream(t, 'a')
  const b = await startUpstream(t, 'b')
  const { app, url } = await startGateway(t, gatewayConfig(NO_ISSUER, `routes: [{ prefix: /old, upstreams: ['${a.url}'], auth: none }]`), { listen: true })
  // Held at the upstream until released below: in flight during the reload, however slow the machine.
  const inFlight = httpGet(`${url}/old/slow?hold`)
  t.ok(await waitFor(async () => a.seen.length === 1), 'the slow request reached the old upstream')

  const result = app.gateway.reload(gatewayConfig(NO_ISSUER, `routes: [{ prefix: /new, upstreams: ['${b.url}'], auth: none }]`))
  t.same(result, { routes: 1, restartNeeded: [] })
  t.equal((await app.inject('/old/x')).statusCode, 404, 'the old route is gone for new requests')
  t.equal((await app.inject('/new/x')).json().upstream, 'b', 'the new route serves')
  a.release()
  const finished = await inFlight
  t.equal(finished.status, 200, 'the request in flight completed')
  t.equal(finished.json.upstream, 'a')
})

t.test('settings a reload cannot apply are reported', async (t) => {
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, 'routes: []'))
  const next = { ...gatewayConfig(NO_ISSUER, 'routes: []'), trustProxy: ['10.0.0.0/8'] }
  t.same(app.gateway.reload(next).restartNeeded, ['trustProxy'])
})

t.test('the file reloader: a bad file keeps the old routes, a good one swaps', async (t) => {
  const a = await startUpstream(t, 'a')
  const b = await startUpstream(t, 'b')
  const dir = t.testdir()
  const file = join(dir, 'gateway.yaml')
  const yaml = (routes: string): string => `issuer: ${NO_ISSUER}\nlog: { level: silent }\nroutes:\n${routes}\n`
  writeFileSync(file, yaml(`  - { prefix: /one, upstreams: ['${a.url}'], auth: none }`))
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString())); done() } })
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `routes: [{ prefix: /one, upstreams: ['${a.url}'], auth: none }]`), { logger: { level: 'info', stream } })
  const reloader = new ConfigReloader(app, file, { debounceMs: 20, pollMs: 100 })
  reloader.watch()
  t.teardown(() => { reloader.close() })

  writeFileSync(file, yaml(`  - { prefix: /two, upstreams: ['not a url'], auth: none, typo: 1 }\n  - { prefix: /two, upstreams: ['${b.url}'] }`))
  t.equal(reloader.reload('test'), false, 'rejected')
  const problems = lines.filter((l) => l.msg === 'config problem').map((l) => String(l.problem))
  t.ok(problems.some((p) => /gateway\.yaml:4:\d+ routes\[0\]\.upstreams\[0\]/.test(p)), 'file:line:column of the bad upstream')
  t.ok(problems.some((p) => /gateway\.yaml:4:\d+ routes\[0\] unknown key "typo"/.test(p)), 'and of the typo')
  t.ok(lines.some((l) => l.msg === 'config reload rejected; the old routes keep serving'))
  t.equal((await app.inject('/one/x')).statusCode, 200, 'the old routes keep serving')

  writeFileSync(file, yaml(`  - { prefix: /two, upstreams: ['${b.url}'], auth: none }`))
  t.ok(await waitFor(async () => (await app.inject('/two/x')).statusCode === 200), 'the watcher applied the good file')
  t.equal((await app.inject('/one/x')).statusCode, 404)
  t.ok(lines.some((l) => l.msg === 'config reloaded'))
})
