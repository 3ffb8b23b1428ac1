/**
 * The start policy both services share (docs/operations.md, "At start"): a store they cannot
 * work without that is unusable at start (Redis refusing connections or not answering, a
 * corrupt signing-keys file) is one readable line on stderr naming what failed, and exit 1;
 * never a stack trace, never a credential, never a process left waiting.
 */
import t, { type Test } from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startRedis } from '@gatehouse/test-kit/redis-harness'
import { demoGatewayConfig, demoIssuerConfig, freePort, ROOT, runNode, writeConfigFile } from './fixtures/processes.ts'

const ISSUER = join(ROOT, 'packages/issuer/bin/gatehouse-issuer.js')
const GATEWAY = join(ROOT, 'packages/gateway/bin/gatehouse-gateway.js')
/** A failed start must end on its own well before this (SIGKILL then, and the test fails). */
const EXIT_BOUND_MS = 30_000
const PASSWORD = 'not-for-your-eyes'

async function issuerConfig (dir: string, redisUrl?: string, commandTimeoutMs?: number): Promise<string> {
  const config = demoIssuerConfig()
  config.listen = { host: '127.0.0.1', port: await freePort() }
  config.dataDir = join(dir, 'issuer-data')
  if (redisUrl !== undefined) config.redis = { url: redisUrl, ...(commandTimeoutMs === undefined ? {} : { commandTimeoutMs }) }
  const file = join(dir, 'issuer.yaml')
  writeConfigFile(file, config)
  return file
}

async function gatewayConfig (dir: string, redisUrl: string, commandTimeoutMs?: number): Promise<string> {
  const config = demoGatewayConfig()
  config.listen = { host: '127.0.0.1', port: await freePort() }
  config.issuer = `http://127.0.0.1:${await freePort()}`
  config.redis = { url: redisUrl, ...(commandTimeoutMs === undefined ? {} : { commandTimeoutMs }) }
  const file = join(dir, 'gateway.yaml')
  writeConfigFile(file, config)
  return file
}

/** Runs the CLI; checks exit 1 and one line on stderr; returns that line. */
async function failsWithOneLine (t: Test, args: string[]): Promise<string> {
  const { code, stderr, output } = await runNode(args, EXIT_BOUND_MS)
  t.equal(code, 1, 'exit 1')
  const lines = stderr.trim().split('\n')
  t.equal(lines.length, 1, `one line on stderr:\n${stderr}`)
  t.notMatch(stderr, /\n\s+at /, 'no stack trace')
  t.notMatch(output, PASSWORD, 'the Redis password is printed nowhere')
  return lines[0] ?? ''
}

t.test('Redis refuses connections', async (t) => {
  const dir = t.testdir()
  const port = await freePort()
  const url = `redis://gatehouse:${PASSWORD}@127.0.0.1:${port}`
  const issuer = await failsWithOneLine(t, [ISSUER, '--config', await issuerConfig(dir, url)])
  t.match(issuer, new RegExp(`^gatehouse-issuer: Redis at 127\\.0\\.0\\.1:${port} cannot be used: connect ECONNREFUSED`), issuer)
  const gateway = await failsWithOneLine(t, [GATEWAY, '--config', await gatewayConfig(dir, url)])
  t.match(gateway, new RegExp(`^gatehouse-gateway: Redis at 127\\.0\\.0\\.1:${port} cannot be used: connect ECONNREFUSED`), gateway)
  const keys = await failsWithOneLine(t, [ISSUER, 'keys', 'list', '--config', join(dir, 'issuer.yaml')])
  t.match(keys, /^gatehouse-issuer: Redis at .* cannot be used/, `keys list too: ${keys}`)
})

t.test('Redis accepts connections but never answers (paused)', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => { await redis.stop() })
  await redis.pause()
  const dir = t.testdir()
  const issuer = await failsWithOneLine(t, [ISSUER, '--config', await issuerConfig(dir, redis.url, 300)])
  t.match(issuer, /^gatehouse-issuer: Redis at 127\.0\.0\.1:\d+ cannot be used: no answer within 300 ms \(redis\.commandTimeoutMs\)$/, issuer)
  const gateway = await failsWithOneLine(t, [GATEWAY, '--config', await gatewayConfig(dir, redis.url, 300)])
  t.match(gateway, /^gatehouse-gateway: Redis at 127\.0\.0\.1:\d+ cannot be used: no answer within 300 ms/, gateway)
  t.ok(redis.isPaused, 'both gave up while Redis was still paused')
})

t.test('a corrupt signing-keys file (embedded store)', async (t) => {
  const dir = t.testdir()
  const config = await issuerConfig(dir)
  mkdirSync(join(dir, 'issuer-data'), { recursive: true, mode: 0o700 })
  const file = join(dir, 'issuer-data', 'signing-keys.json')
  for (const [what, content, reason] of [
    ['truncated', '{"keys": [{"kid": "a"', /is not valid JSON \(.+\)/],
    ['not a key file', '[1, 2, 3]', /is not a Gatehouse key file/],
    ['a malformed key', '{"keys": [{"kid": "a", "alg": "ES256"}]}', /holds a malformed key at keys\[0\]/]
  ] as const) {
    writeFileSync(file, content, { mode: 0o600 })
    const line = await failsWithOneLine(t, [ISSUER, '--config', config])
    t.ok(line.startsWith(`gatehouse-issuer: signing keys file ${file} `), `${what}: names the file: ${line}`)
    t.match(line, reason, `${what}: says what is wrong`)
  }
  const keys = await failsWithOneLine(t, [ISSUER, 'keys', 'rotate', '--config', config])
  t.match(keys, /^gatehouse-issuer: signing keys file .* holds a malformed key/, `keys rotate too: ${keys}`)
})
