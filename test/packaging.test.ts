/**
 * Issue 10.3: what users install, tried as users would. The workspace is built and each
 * publishable package packed with pnpm (workspace versions resolved, publishConfig applied);
 * the tarballs are installed with npm into fresh projects outside the repository, with their
 * dependencies from the registry and no tsx anywhere:
 * (a) plain JavaScript ESM: the issuer CLI from its tarball runs, and a Fastify app registers the
 *     plugin and validates that issuer's real token (200 with it, 401 without);
 * (b) CommonJS `require` of the same plugin;
 * (c) TypeScript, NodeNext, strict, no skipLibCheck: an example using the options type and the
 *     `request.auth` decoration type-checks;
 * (d) the installed `gatehouse-gateway check --config` and `gatehouse-issuer --version` run.
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as oauth from 'oauth4webapi'
import { buildWorkspace } from '@gatehouse/test-kit/build'
import { reapOnExit } from '@gatehouse/test-kit/child-reaper'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import { DEMO, demoIssuerConfig, ROOT, waitFor, writeConfigFile } from './fixtures/processes.ts'

const PACKAGES = ['shared', 'fastify-auth', 'issuer', 'gateway'] as const
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'packages/fastify-auth/package.json'), 'utf8')) as { version: string }).version
const INSTALL_TIMEOUT_MS = 240_000

interface Run { code: number | null, output: string }

/** Runs a command to its end (killed past `timeoutMs`), output and errors together. */
async function run (command: string, args: string[], cwd: string, timeoutMs = 60_000): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TAP|_TAPJS|NODE_OPTIONS$|npm_)/.test(k)))
  const child = spawn(command, args, { cwd, env: { ...env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  reapOnExit(child)
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const [code] = await once(child, 'close') as [number | null]
  clearTimeout(timer)
  return { code, output }
}

/**
 * A long-running node process in `cwd`, stopped when the subtest `t` ends: before tap removes
 * the file's testdir at its end, which a process still writing there would make fail.
 */
function serve (t: Test, cwd: string, args: string[], env: Record<string, string>): { output: () => string } {
  const child = spawn(process.execPath, args, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  reapOnExit(child)
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  })
  return { output: () => output }
}

async function statusOf (url: string, headers: Record<string, string> = {}): Promise<number | undefined> {
  return await fetch(url, { headers }).then((res) => res.status, () => undefined)
}

// pnpm itself when the suite runs under it (`pnpm test`), else the pinned one through npx.
const pnpm = process.env.npm_execpath?.includes('pnpm') === true
  ? { command: process.execPath, args: [process.env.npm_execpath] }
  : { command: 'npx', args: ['-y', 'pnpm@10.34.8'] }

const work = t.testdir()
const tarballs = join(work, 'tarballs')
mkdirSync(tarballs)
await buildWorkspace(ROOT)
for (const name of PACKAGES) {
  const packed = await run(pnpm.command, [...pnpm.args, 'pack', '--pack-destination', tarballs], join(ROOT, 'packages', name))
  if (packed.code !== 0) throw new Error(`pnpm pack ${name}: ${packed.output}`)
}
const tarball = (name: string): string => {
  const file = readdirSync(tarballs).find((f) => f.startsWith(`gatehouse-${name}-`))
  if (file === undefined) throw new Error(`no tarball for ${name}`)
  return `file:${join(tarballs, file)}`
}
// Every @gatehouse package comes from its tarball, wherever it is depended on.
const overrides = Object.fromEntries(PACKAGES.map((name) => [`@gatehouse/${name}`, tarball(name)]))

/** A fresh npm project in the test directory with `dependencies`, installed from the tarballs. */
async function project (name: string, dependencies: Record<string, string>, files: Record<string, string>, manifest: Record<string, unknown> = {}): Promise<string> {
  const dir = join(work, name)
  mkdirSync(dir)
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, private: true, ...manifest, dependencies, overrides }, null, 2))
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text)
  const installed = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], dir, INSTALL_TIMEOUT_MS)
  if (installed.code !== 0) throw new Error(`npm install in ${name}: ${installed.output}`)
  return dir
}

t.test('the tarballs hold what ships, and only that', async (t) => {
  for (const name of PACKAGES) {
    const listed = await run('tar', ['-tzf', tarball(name).slice('file:'.length)], work)
    const files = listed.output.split('\n').filter(Boolean)
    t.ok(files.includes('package/LICENSE'), `${name}: LICENSE`)
    t.ok(files.includes('package/README.md'), `${name}: README.md`)
    t.same(files.filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts')), [], `${name}: no TypeScript sources`)
    t.same(files.filter((f) => /(^|\/)(test|src)\//.test(f)), [], `${name}: no tests, no src/`)
  }
  const manifest = JSON.parse((await run('tar', ['-xzOf', tarball('fastify-auth').slice('file:'.length), 'package/package.json'], work)).output) as Record<string, unknown>
  t.match(manifest, { license: 'MIT', engines: { node: '>=20.19' }, peerDependencies: { fastify: '^5.0.0' } })
  t.notOk((manifest.dependencies as Record<string, string>).fastify, 'fastify is a peer, not a dependency')
  t.notMatch(JSON.stringify(manifest.exports), /gatehouse-source|(?<!\.d)\.ts"/, 'the published exports point at dist/ only')
})

const APP = (load: string): string => `${load}
const app = Fastify()
app.register(gatehouseAuth, { issuer: process.env.ISSUER, audience: 'demo-api' })
app.register(async (scope) => {
  scope.get('/read', { preHandler: scope.requireAuth({ scopes: ['api:read'] }) }, async (request) => ({ sub: request.auth.sub }))
})
app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) }).then(() => console.log('listening'))
`

const esm = await project('esm', { '@gatehouse/fastify-auth': tarball('fastify-auth'), '@gatehouse/issuer': tarball('issuer'), '@gatehouse/gateway': tarball('gateway'), fastify: '^5.0.0' }, {
  'app.mjs': APP("import Fastify from 'fastify'\nimport gatehouseAuth from '@gatehouse/fastify-auth'")
})
const cjs = await project('cjs', { '@gatehouse/fastify-auth': tarball('fastify-auth'), fastify: '^5.0.0' }, {
  'app.cjs': APP("const Fastify = require('fastify')\nconst gatehouseAuth = require('@gatehouse/fastify-auth').default")
})
const ts = await project('ts', { '@gatehouse/fastify-auth': tarball('fastify-auth'), fastify: '^5.0.0', typescript: '~5.9.3', '@types/node': '^20.19.0' }, {
  'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, skipLibCheck: false, noEmit: true, types: ['node'] }, include: ['example.ts'] }),
  'example.ts': `import Fastify from 'fastify'
import gatehouseAuth, { type AccessClaims, type AuthOptions } from '@gatehouse/fastify-auth'
import { RedisRevocationList } from '@gatehouse/fastify-auth/revocation'

const options: AuthOptions = { issuer: 'https://auth.example.com', audience: ['demo-api'], maxStaleness: 30_000 }
const app = Fastify()
await app.register(gatehouseAuth, options)
app.get('/me', { preHandler: app.requireAuth({ scopes: ['api:read'] }) }, async (request) => {
  const claims: AccessClaims | null = request.auth
  const scopes: string[] = claims?.scope ?? []
  return { sub: claims?.sub, scopes }
})
export type Revocations = typeof RedisRevocationList
`
}, { type: 'module' })

t.test('(d) the installed CLIs: --version, check', async (t) => {
  const version = await run(join(esm, 'node_modules/.bin/gatehouse-issuer'), ['--version'], esm)
  t.equal(version.code, 0)
  t.equal(version.output.trim(), VERSION, 'gatehouse-issuer --version')
  t.equal((await run(join(esm, 'node_modules/.bin/gatehouse-gateway'), ['--version'], esm)).output.trim(), VERSION, 'gatehouse-gateway --version')
  writeFileSync(join(esm, 'gateway.yaml'), `issuer: http://127.0.0.1:4000
routes:
  - name: api
    prefix: /api
    upstreams: ['http://127.0.0.1:4001']
    auth: required
    scopes: { GET: [api:read], '*': [api:write] }
`)
  const check = await run(join(esm, 'node_modules/.bin/gatehouse-gateway'), ['check', '--config', 'gateway.yaml'], esm)
  t.equal(check.code, 0, `gatehouse-gateway check: ${check.output}`)
  writeFileSync(join(esm, 'bad.yaml'), 'issuer: http://127.0.0.1:4000\nroutes:\n  - { name: api, prefix: /api, upstreams: [x], auth: sometimes }\n')
  const bad = await run(join(esm, 'node_modules/.bin/gatehouse-gateway'), ['check', '--config', 'bad.yaml'], esm)
  t.equal(bad.code, 1, 'a bad config exits 1')
  t.match(bad.output, /bad\.yaml:\d+:\d+/, 'with a located error')
})

t.test('(a, b) the plugin from its tarball validates a real token of the installed issuer, ESM and CommonJS', async (t) => {
  const port = await freePort()
  const config = demoIssuerConfig()
  config.issuer = `http://127.0.0.1:${port}`
  config.listen = { host: '127.0.0.1', port }
  config.dataDir = join(esm, 'issuer-data')
  config.log = { level: 'warn' }
  writeConfigFile(join(esm, 'issuer.yaml'), config)
  const issuer = serve(t, esm, ['node_modules/@gatehouse/issuer/bin/gatehouse-issuer.js', '--config', 'issuer.yaml'], {})
  await waitFor(`the installed issuer (${issuer.output().slice(-300)})`, async () => await statusOf(`${config.issuer}/readyz`) === 200 ? true : undefined)

  const as = await oauth.processDiscoveryResponse(new URL(config.issuer), await oauth.discoveryRequest(new URL(config.issuer), { [oauth.allowInsecureRequests]: true }))
  const client = { client_id: DEMO.service.id }
  const token = await oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client,
    oauth.ClientSecretBasic(DEMO.service.secret), new URLSearchParams({ scope: 'api:read' }), { [oauth.allowInsecureRequests]: true }))

  for (const [kind, dir, file] of [['ESM', esm, 'app.mjs'], ['CommonJS', cjs, 'app.cjs']] as const) {
    const appPort = await freePort()
    const app = serve(t, dir, [file], { ISSUER: config.issuer, PORT: String(appPort) })
    await waitFor(`the ${kind} app (${app.output().slice(-300)})`, () => app.output().includes('listening') ? true : undefined)
    const url = `http://127.0.0.1:${appPort}/read`
    t.equal(await statusOf(url, { authorization: `Bearer ${token.access_token}` }), 200, `${kind}: 200 with the token`)
    t.equal(await statusOf(url), 401, `${kind}: 401 without`)
    t.equal(await statusOf(url, { authorization: `Bearer ${token.access_token.slice(0, -4)}AAAA` }), 401, `${kind}: 401 with a tampered token`)
  }
})

t.test('(c) TypeScript, NodeNext, strict: the example type-checks against the published types', async (t) => {
  const checked = await run(process.execPath, [join(ts, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], ts)
  t.equal(checked.code, 0, checked.output)
  writeFileSync(join(ts, 'wrong.ts'), "import gatehouseAuth from '@gatehouse/fastify-auth'\nimport Fastify from 'fastify'\nawait Fastify().register(gatehouseAuth, { issuer: 42 })\n")
  writeFileSync(join(ts, 'tsconfig.wrong.json'), JSON.stringify({ extends: './tsconfig.json', include: ['wrong.ts'] }))
  const wrong = await run(process.execPath, [join(ts, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.wrong.json'], ts)
  t.not(wrong.code, 0, 'and a wrong option is a type error (the types are real, not any)')
})

t.test('no tsx in any consumer project', async (t) => {
  for (const dir of [esm, cjs, ts]) t.notOk(existsSync(join(dir, 'node_modules/tsx')), dir)
})
