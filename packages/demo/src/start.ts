/**
 * `pnpm start`: the issuer, the gateway, the demo resource server and the demo client app as
 * child processes in one terminal, with prefixed logs. Prints the URLs, the demo fixture and
 * copy-paste curls once all answer. Ctrl-C or SIGTERM stops them all (exit 0); a service that
 * dies stops the rest (exit 1).
 * REDIS_URL, when set, reaches the services through their environment. `pnpm start` builds,
 * then runs this from dist/; the services run their bins as this process runs (codeFlags).
 */
import { existsSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Child, type ServiceSpec } from './launcher/child.ts'
import { API_URL, APP_URL, banner, GATEWAY_URL, ISSUER_URL } from './launcher/banner.ts'
import { painter } from './launcher/log-lines.ts'
import { codeFlags } from './launcher/node-flags.ts'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const READY_TIMEOUT_MS = 60_000
/** How long the services get to stop before they are killed. */
const STOP_TIMEOUT_MS = 10_000
/** A second stop signal sooner than this is the same Ctrl-C, not a request to force. */
const FORCE_AFTER_MS = 1000

const paint = painter(process.stdout.isTTY && process.env.NO_COLOR === undefined)
const write = (line: string): void => { process.stdout.write(`${line}\n`) }
const say = (line: string): void => { write(`${paint('bold', '[demo]')} ${line}`) }
// A closed stdout (e.g. piped into `head`) must not crash the launcher and orphan the services.
process.stdout.on('error', () => {})

const NODE_FLAGS = codeFlags(process.execArgv)

const issuer: ServiceSpec = {
  name: 'issuer',
  color: 'cyan',
  args: [...NODE_FLAGS, 'packages/issuer/bin/gatehouse-issuer.js', '--config', 'docker/demo/issuer.yaml'],
  healthUrl: `${ISSUER_URL}/healthz`
}
const api: ServiceSpec = {
  name: 'api',
  color: 'green',
  args: [...NODE_FLAGS, 'packages/demo/bin/demo-resource-server.js', '--issuer', ISSUER_URL, '--port', new URL(API_URL).port],
  healthUrl: `${API_URL}/healthz`
}
// The client app needs the issuer and the gateway only when a browser uses it.
const app: ServiceSpec = {
  name: 'app',
  color: 'yellow',
  args: [...NODE_FLAGS, 'packages/demo/bin/demo-client-app.js', '--issuer', ISSUER_URL, '--gateway', GATEWAY_URL, '--port', new URL(APP_URL).port],
  healthUrl: `${APP_URL}/healthz`
}
const gateway: ServiceSpec = {
  name: 'gateway',
  color: 'magenta',
  args: [...NODE_FLAGS, 'packages/gateway/bin/gatehouse-gateway.js', '--config', 'docker/demo/gateway.yaml'],
  healthUrl: `${GATEWAY_URL}/healthz`
}

/** True when something already listens on the URL's port. */
async function isTaken (url: string): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return await new Promise((resolve) => {
    const socket = connect(Number(port), hostname)
    socket.setTimeout(500)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
    socket.once('timeout', () => { socket.destroy(); resolve(false) })
  })
}

const children: Child[] = []
let stopping = false

/** Signals every service, waits (killing after STOP_TIMEOUT_MS), exits with `code`. Once. */
function stopAll (code: number, signal: NodeJS.Signals): void {
  if (stopping) return
  stopping = true
  for (const child of children) child.signal(signal)
  const timer = setTimeout(() => {
    say(`still running after ${STOP_TIMEOUT_MS / 1000} s: killing`)
    for (const child of children) child.signal('SIGKILL')
  }, STOP_TIMEOUT_MS)
  Promise.all(children.map(async (child) => await child.closed)).then(() => {
    clearTimeout(timer)
    say(code === 0 ? 'stopped' : 'stopped after a failure')
    process.exit(code)
  }, () => process.exit(1))
}

function startService (spec: ServiceSpec): Child {
  if (stopping) throw new Error(`not starting ${spec.name}: stopping`)
  const child = new Child(spec, { cwd: ROOT, env: process.env, paint, write })
  children.push(child)
  child.closed.then(({ code, signal }) => {
    if (stopping) return
    say(`${spec.name} exited (${signal ?? `code ${String(code)}`}); stopping the others`)
    stopAll(1, 'SIGTERM')
  }, () => {})
  return child
}

let stopRequestedAt = 0
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (!stopping) {
      stopRequestedAt = Date.now()
      say(`${signal}: stopping (Ctrl-C again to force)`)
      stopAll(0, signal)
      return
    }
    // Under `pnpm start` one Ctrl-C arrives twice (from the terminal, and forwarded by pnpm):
    // only a later one forces.
    if (Date.now() - stopRequestedAt < FORCE_AFTER_MS) return
    say('forced: killing')
    for (const child of children) child.signal('SIGKILL')
    process.exit(1)
  })
}
// Last resort (an exception in the launcher): never leave the services running alone.
process.on('exit', () => { for (const child of children) child.signal('SIGKILL') })

async function main (): Promise<void> {
  const hasGateway = existsSync(join(ROOT, 'packages/gateway/bin/gatehouse-gateway.js')) && existsSync(join(ROOT, 'docker/demo/gateway.yaml'))
  const specs = hasGateway ? [issuer, api, app, gateway] : [issuer, api, app]
  for (const spec of specs) {
    if (await isTaken(spec.healthUrl)) {
      say(`${new URL(spec.healthUrl).host} is already in use (is another demo running?): not starting`)
      process.exit(1)
    }
  }
  say(process.env.REDIS_URL === undefined ? 'embedded in-memory stores' : 'REDIS_URL is set: the services keep their state in Redis')
  if (!hasGateway) say('gateway skipped: packages/gateway/bin/gatehouse-gateway.js or docker/demo/gateway.yaml is missing')

  // The gateway starts once the issuer answers (it reads the issuer's discovery and keys).
  const first = [startService(issuer), startService(api), startService(app)]
  await Promise.all(first.map(async (child) => await child.waitReady(READY_TIMEOUT_MS)))
  if (hasGateway) await startService(gateway).waitReady(READY_TIMEOUT_MS)
  write(banner({ gatewayRunning: hasGateway, redisUrl: process.env.REDIS_URL, paint }))
}

main().catch((err: unknown) => {
  if (stopping) return
  say(`${(err as Error).message}; stopping`)
  stopAll(1, 'SIGTERM')
})
