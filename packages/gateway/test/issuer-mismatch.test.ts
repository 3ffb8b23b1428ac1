/**
 * `issuer:` that is not what the issuer calls itself (typically a trailing slash): `iss` is
 * compared exactly, so the gateway does not guess. It refuses to start, with a located line
 * naming both values, instead of answering every request 503 "issuer cannot be reached".
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { IssuerMismatchError } from '@gatehouse/fastify-auth'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import { SOURCE_NODE_ARGS } from '@gatehouse/test-kit/source-run'
import { build } from '../src/app.ts'
import { gatewayConfig } from './fixtures/gateway.ts'
import { startTestIssuer } from './fixtures/issuer.ts'

const BIN = fileURLToPath(new URL('../bin/gatehouse-gateway.js', import.meta.url))
const issuer = await startTestIssuer(t)

t.test('build() rejects with the mismatch, naming both identifiers', async (t) => {
  const err = await build(gatewayConfig(`${issuer.url}/`, ''), { logger: false }).then(async (app) => { await app.close() }, (e: unknown) => e)
  t.ok(err instanceof IssuerMismatchError, String(err))
  t.match(err, { expected: `${issuer.url}/`, found: issuer.url })
})

t.test('the gateway exits 1 with the located problem', async (t) => {
  const file = join(t.testdir(), 'gateway.yaml')
  writeFileSync(file, `listen: { host: 127.0.0.1, port: ${await freePort()} }\nlog: { level: silent }\nissuer: ${issuer.url}/\n`)
  const child = spawn(process.execPath, [...SOURCE_NODE_ARGS, BIN, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, REDIS_URL: '' } })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  t.equal(code, 1)
  t.equal(stderr.trim(), `${file}:3:9 issuer is "${issuer.url}/" but the issuer there calls itself "${issuer.url}" (its discovery document); tokens' iss must match exactly, a trailing slash included: set issuer to "${issuer.url}"`)
})

t.test('the right identifier starts', async (t) => {
  const app = await build(gatewayConfig(issuer.url, ''), { logger: false })
  t.teardown(async () => await app.close())
  t.equal((await app.inject('/readyz')).statusCode, 200)
})
