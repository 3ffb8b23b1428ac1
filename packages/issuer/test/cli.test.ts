/** The CLI as a user runs it: config errors, hash helpers, keys rotate against a running server. */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import { SOURCE_NODE_ARGS } from '@gatehouse/test-kit/source-run'
import { verifyPassword, secretMatcher } from '../src/secrets.ts'
import { fixtureYaml } from './fixtures/issuer.ts'

const BIN = fileURLToPath(new URL('../bin/gatehouse-issuer.js', import.meta.url))

async function run (args: string[], stdin?: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [...SOURCE_NODE_ARGS, BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdin.end(stdin)
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stdout, stderr }
}

t.test('--version and -v print the package\'s version, exit 0', async (t) => {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  for (const flag of ['--version', '-v']) {
    const res = await run([flag])
    t.equal(res.code, 0, `${flag}: exit 0 ${res.stderr}`)
    t.equal(res.stdout, `${version}\n`, `${flag}: ${version}`)
  }
})

t.test('a bad config: every problem as file:line:column field rule, exit 1', async (t) => {
  const dir = t.testdir({
    'bad.yaml': [
      'issuer: http://127.0.0.1:4000', //              1
      'listen: { port: 99999 }', //                    2
      'tokenz: {}', //                                 3
      'scopes:', //                                    4
      '  - name: api:read', //                         5
      'clients:', //                                   6
      '  - clientId: web', //                          7
      '    grants: [authorization_code, teleport]', // 8
      '  - clientId: svc', //                          9
      // eslint-disable-next-line no-template-curly-in-string
      '    secret: ${SVC_SECRET}', //                  10
      '    grants: [client_credentials]', //           11
      ''
    ].join('\n')
  })
  const file = join(dir, 'bad.yaml')
  const { code, stderr } = await run(['check', '--config', file])
  t.equal(code, 1)
  const lines = stderr.trim().split('\n')
  t.ok(lines.includes(`${file}:2:17 listen.port must be <= 65535`), stderr)
  t.ok(lines.includes(`${file}:3:1 (root) unknown key "tokenz"`), stderr)
  t.ok(lines.some((l) => l.startsWith(`${file}:8:34 clients[0].grants[1] must be one of:`)), stderr)
  t.ok(lines.some((l) => l.startsWith(`${file}:10:13 clients[1].secret`) && l.includes('SVC_SECRET')), stderr)
})

t.test('rules across fields are located too', async (t) => {
  const dir = t.testdir({
    'rules.yaml': [
      'issuer: http://127.0.0.1:4000',
      'scopes: [{ name: a }]',
      'clients:',
      '  - clientId: web',
      '    grants: [authorization_code]',
      '    scopes: [a, b]',
      'metrics: { path: /oauth2/token }',
      ''
    ].join('\n')
  })
  const { code, stderr } = await run(['check', '--config', join(dir, 'rules.yaml')])
  t.equal(code, 1)
  t.match(stderr, /rules\.yaml:4:5 clients\[0\]\.redirectUris authorization_code and implicit need at least one redirect URI/)
  t.match(stderr, /rules\.yaml:6:17 clients\[0\]\.scopes\[1\] unknown scope "b"/)
  t.match(stderr, /rules\.yaml:7:18 metrics\.path \/oauth2\/token is taken by the issuer's own endpoints/)
})

t.test('a missing file and a good one', async (t) => {
  const missing = await run(['check', '--config', '/nonexistent/issuer.yaml'])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /\/nonexistent\/issuer\.yaml .*no such file/)
  const demo = await run(['check', '--config', fileURLToPath(new URL('../../../docker/demo/issuer.yaml', import.meta.url))])
  t.equal(demo.code, 0, demo.stderr)
  const usage = await run(['frobnicate'])
  t.equal(usage.code, 1)
  t.match(usage.stderr, /unknown command "frobnicate"/)
})

t.test('hash-password and hash-secret', async (t) => {
  const hashed = await run(['hash-password'], 'correct horse battery staple\n')
  t.equal(hashed.code, 0)
  const hash = hashed.stdout.trim()
  t.match(hash, /^\$scrypt\$ln=15,r=8,p=1\$/)
  t.ok(await verifyPassword('correct horse battery staple', hash))
  t.notOk(await verifyPassword('wrong', hash))
  const secret = await run(['hash-secret', '--stdin'], 'my-client-secret-value\n')
  const secretHash = /secretHash: (\S+)/.exec(secret.stdout)?.[1] ?? ''
  t.ok(secretMatcher({ secretHash })('my-client-secret-value'))
  const generated = await run(['hash-secret'])
  const [, value = '', hashOfValue = ''] = /secret: +(\S+)\nsecretHash: (\S+)/.exec(generated.stdout) ?? []
  t.equal(value.length, 43, '256 random bits')
  t.ok(secretMatcher({ secretHash: hashOfValue })(value))
})

t.test('keys rotate reaches a running issuer (embedded store)', async (t) => {
  const dir = t.testdir()
  const port = await freePort()
  const file = join(dir, 'issuer.yaml')
  writeFileSync(file, await fixtureYaml(port, join(dir, 'data'), 'keys: { refreshInterval: 1, activationDelay: 0 }\n'))
  const server = spawn(process.execPath, [...SOURCE_NODE_ARGS, BIN, '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(() => { server.kill('SIGKILL') })
  const jwks = async (): Promise<string[]> => {
    const res = await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`)
    return ((await res.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid)
  }
  // Polled, with bounds a loaded 2-core machine does not miss (a start takes seconds there).
  let before: string[] = []
  const startDeadline = Date.now() + 60_000
  while (before.length === 0 && Date.now() < startDeadline) {
    before = await jwks().catch(() => [])
    if (before.length === 0) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(before.length, 1, 'the server is up with one key')
  const rotated = await run(['keys', 'rotate', '--config', file])
  t.equal(rotated.code, 0, rotated.stderr)
  const kid = /published (\S+)/.exec(rotated.stdout)?.[1]
  t.type(kid, 'string')
  let after: string[] = []
  const refreshDeadline = Date.now() + 30_000 // it re-reads its keys every second
  while (!after.includes(kid ?? '') && Date.now() < refreshDeadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    after = await jwks()
  }
  t.ok(after.includes(kid ?? '') && after.includes(before[0] ?? ''), 'both keys published by the running server')

  const second = await run(['--config', file])
  t.equal(second.code, 1, 'a second server on the same port exits 1')
  t.match(second.stderr, new RegExp(`^gatehouse-issuer: listen 127\\.0\\.0\\.1:${port} failed: EADDRINUSE`, 'm'), 'with one readable line')
  t.notMatch(second.stderr, /\n\s+at /, 'and no stack trace')

  server.kill('SIGTERM')
  const [code] = await once(server, 'exit') as [number | null]
  t.equal(code, 0, 'SIGTERM: a clean exit')
})
