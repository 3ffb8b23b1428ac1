/**
 * The `pnpm start` launcher as a process: it prints the URLs and copy-paste lines once the
 * services answer, the printed token line works, the client app answers on APP_PORT with its
 * redirect URIs registered at the issuer, and SIGINT stops everything (exit 0, ports
 * closed). From the sources with the embedded store and with REDIS_URL (a real redis-server),
 * and as `pnpm start` runs it: built, from dist/ under plain `node` (no TypeScript loader).
 */
import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { freePort, startRedis } from '@gatehouse/test-kit/redis-harness'
import { SOURCE_NODE_ARGS } from '@gatehouse/test-kit/source-run'
import { buildWorkspace } from '@gatehouse/test-kit/build'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
// Free ports, never the demo's 4000/4001/8080: the test must not depend on (or disturb) a
// demo a developer is running. The launcher and the demo YAML read the same variables.
const PORTS = { issuer: await freePort(), api: await freePort(), gateway: await freePort(), app: await freePort() }
process.env.ISSUER_PORT = String(PORTS.issuer)
process.env.API_PORT = String(PORTS.api)
process.env.GATEWAY_PORT = String(PORTS.gateway)
process.env.APP_PORT = String(PORTS.app)
const { curlLines, READY_LINE } = await import('../src/launcher/banner.ts')
const HAS_CURL = spawnSync('curl', ['--version']).status === 0

async function isListening (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}

/** The printed client_credentials line, taken apart and sent with fetch. */
async function tokenFromPrintedLine (line: string): Promise<Response> {
  const [, user = '', password = ''] = /-u ([^:\s]+):(\S+)/.exec(line) ?? []
  const params = [...line.matchAll(/-d (\S+)/g)].map((m) => m[1]).join('&')
  const url = /(http:\/\/\S+\/oauth2\/token)/.exec(line)?.[1] ?? ''
  return await fetch(url, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: params
  })
}

/**
 * The client app on APP_PORT: its two clients' pages, and the issuer (ISSUER_PORT) takes their
 * redirect URIs (the demo YAML reads APP_PORT too); the gateway lets the app's origin call /api.
 */
async function checkClientApp (t: Test, gateway: boolean): Promise<void> {
  const app = `http://127.0.0.1:${PORTS.app}`
  const home = await fetch(app)
  t.equal(home.status, 200, 'the client app answers on APP_PORT')
  t.match(await home.text(), '<h1>Demo Web App</h1>')
  const spa = await fetch(`${app}/spa/`)
  t.equal(spa.status, 200, 'its single-page app too')
  t.match(spa.headers.get('content-security-policy'), `connect-src http://127.0.0.1:${PORTS.issuer} http://127.0.0.1:${PORTS.gateway};`, 'which may call the issuer and the gateway on their ports')
  await spa.body?.cancel()
  for (const path of ['/spa/app.js', '/spa/vendor/oauth4webapi.js']) {
    const script = await fetch(`${app}${path}`)
    t.match({ status: script.status, type: script.headers.get('content-type'), body: await script.text() }, { status: 200, type: /^text\/javascript/, body: /\bexport\b|\bimport\b/ }, `${path}: the page's module script is served`)
  }

  const login = await fetch(`${app}/login`, { redirect: 'manual' })
  const authorize = new URL(login.headers.get('location') ?? '')
  t.equal(authorize.origin, `http://127.0.0.1:${PORTS.issuer}`, 'demo-web signs in at the issuer')
  t.equal(authorize.searchParams.get('redirect_uri'), `${app}/callback`)
  const spaAuthorize = new URL(authorize)
  spaAuthorize.searchParams.set('client_id', 'demo-spa')
  spaAuthorize.searchParams.set('redirect_uri', `${app}/spa/callback`)
  for (const [client, url] of [['demo-web', authorize], ['demo-spa', spaAuthorize]] as const) {
    const page = await fetch(url)
    t.match({ status: page.status, body: await page.text() }, { status: 200, body: /name="password"/ }, `${client}: the issuer takes its redirect URI on APP_PORT (the login page)`)
  }
  if (gateway) {
    const preflight = await fetch(`http://127.0.0.1:${PORTS.gateway}/api/hello`, { method: 'OPTIONS', headers: { origin: app, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } })
    t.equal(preflight.headers.get('access-control-allow-origin'), app, 'the gateway lets the app\'s origin call /api (CORS)')
  }
}

/** The launcher from its source (what the tests run), and as `pnpm start` runs it. */
const FROM_SOURCE = [...SOURCE_NODE_ARGS, 'packages/demo/src/start.ts']
const FROM_DIST = ['packages/demo/dist/start.js']

async function runDemo (t: Test, env: NodeJS.ProcessEnv, store: 'memory' | 'redis', launcher = FROM_SOURCE): Promise<{ output: string, gateway: boolean }> {
  const child = spawn(process.execPath, launcher, {
    cwd: ROOT,
    env: { ...env, GATEHOUSE_DATA_DIR: t.testdir(), NO_COLOR: '1', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  // Never leave a demo behind, whatever fails below. SIGTERM first: its services run in their
  // own process groups, and only the launcher stops them (SIGKILL would leave them to the
  // child-reaper, holding the ports the next test wants, until this file ends).
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    await exited
    clearTimeout(timer)
  })

  const deadline = Date.now() + 60_000
  while (!output.includes('Ctrl-C stops everything.') && child.exitCode === null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(output.includes(READY_LINE), 'the ready banner was printed')
  if (!output.includes('Ctrl-C stops everything.')) {
    t.fail(`the launcher did not get ready:\n${output}`)
    return { output, gateway: false }
  }
  t.match(output, `[issuer] info  Server listening at http://127.0.0.1:${PORTS.issuer}`, 'prefixed, readable issuer logs')
  t.match(output, `[api] info  Server listening at http://127.0.0.1:${PORTS.api}`, 'prefixed, readable resource server logs')
  t.match(output, `[app] info  Server listening at http://127.0.0.1:${PORTS.app}`, 'prefixed, readable client app logs')
  t.match(output, `  app       http://127.0.0.1:${PORTS.app}   the demo client app`, 'the banner lists the client app')
  t.notOk(output.includes('\x1b['), 'no colors when not on a TTY')
  for (const line of curlLines()) t.ok(output.includes(line), `printed: ${line.slice(0, 40)}...`)
  for (const who of ['alice / alice-password', 'bob / bob-password', 'demo-web', 'demo-spa', 'demo-service', 'demo-cli', 'demo-legacy']) t.ok(output.includes(who), `lists ${who}`)
  const gateway = !output.includes('gateway skipped')
  const ready = await (await fetch(`http://127.0.0.1:${PORTS.issuer}/readyz`)).json() as { store: string }
  t.equal(ready.store, store, `the issuer runs on the ${store} store`)

  const [tokenLine = '', apiLine = '', logoutLine = ''] = curlLines()
  const tokenRes = await tokenFromPrintedLine(tokenLine)
  t.equal(tokenRes.status, 200, 'the printed client_credentials line gets a token')
  const token = String((await tokenRes.json() as { access_token: string }).access_token)
  t.match(token, /^ey[\w-]+\.[\w-]+\.[\w-]+$/)
  if (HAS_CURL) {
    const shell = spawnSync('sh', ['-c', `${tokenLine}\nprintf %s "$TOKEN"`], { encoding: 'utf8' })
    t.match(shell.stdout, /^ey[\w-]+\.[\w-]+\.[\w-]+$/, 'the printed line works as written in sh (curl and node only)')
  }
  const echo = await (await fetch(`http://127.0.0.1:${PORTS.api}/hello`, { headers: { authorization: `Bearer ${token}` } })).json() as { method: string, path: string }
  t.match(echo, { method: 'GET', path: '/hello' }, 'the resource server answers')

  await checkClientApp(t, gateway)

  if (gateway) {
    const apiUrl = /(http:\/\/\S+)$/.exec(apiLine)?.[1] ?? ''
    const logoutUrl = /(http:\/\/\S+)$/.exec(logoutLine)?.[1] ?? ''
    const bearer = { authorization: `Bearer ${token}` }
    t.equal((await fetch(apiUrl, { headers: bearer })).status, 200, 'through the gateway')
    t.equal((await fetch(logoutUrl, { method: 'POST', headers: bearer })).status, 200, 'logout through the gateway')
    t.equal((await fetch(apiUrl, { headers: bearer })).status, 401, 'the token is refused after logout')
  }

  child.kill('SIGINT')
  const [code] = await exited
  t.equal(code, 0, 'SIGINT: exit 0')
  t.match(output, /\[demo\] stopped/)
  for (const [name, port] of Object.entries(PORTS)) t.equal(await isListening(port), false, `${name} port ${port} closed`)
  return { output, gateway }
}

const gatewayPresent = existsSync(new URL('../../gateway/bin/gatehouse-gateway.js', import.meta.url)) && existsSync(new URL('../../../docker/demo/gateway.yaml', import.meta.url))

t.test('the demo launcher', async (t) => {
  const env = { ...process.env }
  delete env.REDIS_URL

  t.test('embedded store', async (t) => {
    const { output, gateway } = await runDemo(t, env, 'memory')
    t.equal(gateway, gatewayPresent, gatewayPresent ? 'the gateway was started' : 'a missing gateway is skipped with a message')
    t.match(output, /in-memory/)
  })

  t.test('with REDIS_URL: passed through to the services', async (t) => {
    const redis = await startRedis()
    t.teardown(redis.stop)
    const { output } = await runDemo(t, { ...env, REDIS_URL: redis.url }, 'redis')
    t.match(output, `Redis at ${redis.url}`)
    t.notMatch(output, /embedded in-memory store: codes/, 'the issuer did not fall back to its memory store')
  })

  t.test('as `pnpm start` runs it: the build, then dist/ with plain node', async (t) => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }
    t.equal(pkg.scripts.start, `pnpm run build && node ${FROM_DIST.join(' ')}`, 'pnpm start: build, then the launcher from dist/')
    await buildWorkspace(ROOT)
    // Plain node runs no TypeScript: every service that answers runs its dist/.
    const { gateway } = await runDemo(t, env, 'memory', FROM_DIST)
    t.equal(gateway, gatewayPresent, 'the gateway too')
  })
})
