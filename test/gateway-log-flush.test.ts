/**
 * The gateway's request log is batched (packages/gateway/src/log-output.ts); no line may be
 * lost for it (issue 14): a gateway under load stopped by SIGTERM has written one line per
 * request answered, and a process that crashes (uncaught exception, process.exit) writes what
 * it had buffered. Only SIGKILL loses the buffer: shown too, so the batching is known to be real.
 */
import t from 'tap'
import { join } from 'node:path'
import { parseGatewayConfig } from '../packages/gateway/src/load-config.ts'
import { GatewayProcess, ROOT, runNode, Service, startOnFreePort, writeText } from './fixtures/processes.ts'

const dir = t.testdir()
const upstream = await startOnFreePort((port) => new Service({ name: 'upstream', args: [join(ROOT, 'test/fixtures/counting-upstream.ts'), 'u', String(port)], port, readyPath: '/healthz' }))
t.teardown(async () => { await upstream.stop() })

t.test('a gateway stopped by SIGTERM right after a burst has logged every request', async (t) => {
  const yaml = (port: number): string => `
listen: { host: 127.0.0.1, port: ${port} }
issuer: http://127.0.0.1:1
log: { level: info }
routes:
  - { name: svc, prefix: /svc, upstreams: ['${upstream.url}'], auth: none }
`
  const gateway = await startOnFreePort((port) => {
    const configFile = join(dir, 'gateway.yaml')
    writeText(configFile, yaml(port))
    return new GatewayProcess({ name: 'gateway', port, configFile, config: parseGatewayConfig(yaml(port), configFile), readyPath: '/healthz' })
  })
  t.teardown(async () => { await gateway.stop() })
  const total = 3000
  let sent = 0
  const statuses: number[] = []
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (sent < total) {
      sent++
      const res = await fetch(`${gateway.url}/svc/x`, { headers: { 'x-test-id': String(sent) } })
      await res.arrayBuffer()
      statuses.push(res.status)
    }
  }))
  // At once: the last lines are still in the buffer.
  const exit = await gateway.stop()
  t.equal(exit.code, 0, 'a clean stop')
  t.equal(statuses.filter((s) => s === 200).length, total)
  const lines = gateway.output.match(/"msg":"request completed"/g) ?? []
  t.equal(lines.length, total, 'one line per request, none lost')
  t.match(gateway.output, /"msg":"shutting down"/)
})

for (const how of ['throw', 'exit'] as const) {
  t.test(`a crash (${how === 'throw' ? 'uncaught exception' : 'process.exit'}) writes what was buffered`, async (t) => {
    const { code, output } = await runNode([join(ROOT, 'test/fixtures/log-crash.ts'), '500', how])
    t.equal(code, how === 'throw' ? 1 : 3)
    t.equal((output.match(/"msg":"request completed"/g) ?? []).length, 500)
  })
}

t.test('SIGKILL is the one end that loses the buffer (the batching is real)', async (t) => {
  const { output } = await runNode([join(ROOT, 'test/fixtures/log-crash.ts'), '50', 'kill'])
  const written = (output.match(/"msg":"request completed"/g) ?? []).length
  t.ok(written < 50, `${written} of 50 lines out before the SIGKILL`)
})
