/**
 * Token issuance throughput: Gatehouse's issuer vs npm oidc-provider, client_credentials with
 * ES256 JWT access tokens. See bench/README.md.
 *
 *   pnpm bench [--rounds 5] [--duration 8] [--warmup 10] [--connections 50]
 *              [--only gatehouse|oidc-provider] [--issuer-root DIR] [--cpu-prof]
 */
import { execFileSync } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { load, validate, type LoadResult } from './lib/load.ts'
import { machine, render, type ServerRounds, type Settings } from './lib/report.ts'
import { startGatehouse, startOidcProvider, runBenchmark, type Server } from './lib/servers.ts'

const BENCH = fileURLToPath(new URL('.', import.meta.url))
const RESULTS = join(BENCH, 'results')
const CPU = { server: 0, load: 1 }

const SERVER_NAMES = ['gatehouse', 'oidc-provider'] as const

interface Options extends Settings {
  cpuProf: boolean
  only: string | undefined
  issuerRoot: string
}

function readSettings (): Options {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      duration: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '10' },
      connections: { type: 'string', default: '50' },
      only: { type: 'string' },
      'issuer-root': { type: 'string', default: join(BENCH, '..') },
      'cpu-prof': { type: 'boolean', default: false }
    }
  })
  if (values.only !== undefined && !(SERVER_NAMES as readonly string[]).includes(values.only)) {
    throw new Error(`--only must be one of ${SERVER_NAMES.join(', ')}`)
  }
  const positive = (name: 'rounds' | 'duration' | 'warmup' | 'connections'): number => {
    const n = Number(values[name])
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`)
    return n
  }
  return {
    rounds: positive('rounds'),
    duration: positive('duration'),
    warmup: positive('warmup'),
    connections: positive('connections'),
    serverCpu: CPU.server,
    loadCpu: CPU.load,
    cpuProf: values['cpu-prof'],
    only: values.only,
    issuerRoot: resolve(values['issuer-root'])
  }
}

/** taskset must exist and there must be two CPUs: one for the server, one for the load. */
function checkMachine (settings: Settings): void {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' })
  } catch {
    throw new Error('taskset not found: install util-linux')
  }
  if (cpus().length < 2) throw new Error('needs at least 2 CPUs (server on CPU 0, load on CPU 1)')
  // Keep this process (idle during runs) off the servers' CPU too.
  execFileSync('taskset', ['-a', '-p', '-c', String(settings.loadCpu), String(process.pid)], { stdio: 'ignore' })
}

async function versionOf (packageJson: string): Promise<string> {
  return (JSON.parse(await readFile(packageJson, 'utf8')) as { version: string }).version
}

const isClean = (r: LoadResult): boolean => r.non2xx === 0 && r.errors === 0 && r.timeouts === 0
const describe = (r: LoadResult): string =>
  `${Math.round(r.tokensPerSecond)} tokens/s (${Math.round(r.cpuPerToken)} µs CPU each), p50 ${r.p50} ms, p99 ${r.p99} ms, non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts}; ` +
  `CPU ${CPU.server}: server ${Math.round(r.cpu.server)}%, other ${Math.round(r.cpu.other)}%`

async function main (): Promise<number> {
  const settings = readSettings()
  const host = machine()
  checkMachine(settings)
  const profileDir = join(RESULTS, 'profiles')
  const nodeFlags = settings.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []
  if (settings.cpuProf) await mkdir(profileDir, { recursive: true })

  const names = SERVER_NAMES.filter((name) => settings.only === undefined || settings.only === name)
  const servers: Server[] = []
  const results: ServerRounds[] = []
  for (const name of names) {
    if (name === 'gatehouse') {
      servers.push(await startGatehouse(settings.serverCpu, nodeFlags, settings.issuerRoot))
      results.push({ name, version: await versionOf(join(settings.issuerRoot, 'packages/issuer/package.json')), rounds: [] })
    } else {
      servers.push(await startOidcProvider(settings.serverCpu, nodeFlags))
      results.push({ name, version: await versionOf(join(BENCH, 'node_modules/oidc-provider/package.json')), rounds: [] })
    }
  }
  for (const server of servers) {
    const { header } = await validate(server)
    console.log(`${server.name}: ${server.tokenUrl} (pid ${server.pid}) issues ${String(header.alg)} ${String(header.typ)} tokens`)
  }

  const warmupLoad = { connections: settings.connections, duration: settings.warmup, cpu: settings.loadCpu, serverCpu: settings.serverCpu }
  for (const server of servers) {
    const r = await load(server, warmupLoad)
    console.log(`warm-up ${server.name}: ${describe(r)}`)
    if (!isClean(r)) throw new Error(`${server.name} failed requests during warm-up: ${describe(r)}`)
  }

  const roundLoad = { connections: settings.connections, duration: settings.duration, cpu: settings.loadCpu, serverCpu: settings.serverCpu }
  for (let round = 1; round <= settings.rounds; round++) {
    for (const [i, server] of servers.entries()) {
      const r = await load(server, roundLoad)
      results[i]?.rounds.push(r)
      console.log(`round ${round}/${settings.rounds} ${server.name}: ${describe(r)}`)
    }
  }
  for (const server of servers) await validate(server)

  const isValid = results.every((s) => s.rounds.every(isClean))
  let table = render(results, settings, host, new Date())
  if (!isValid) table += '\n**INVALID: some requests failed during the rounds (see non-2xx and errors).**\n'
  await mkdir(RESULTS, { recursive: true })
  await writeFile(join(RESULTS, 'token-issuance.md'), table)
  console.log('\n' + table)
  console.log(`written to ${join(RESULTS, 'token-issuance.md')}`)
  return isValid ? 0 : 1
}

await runBenchmark(main)
