/**
 * client_credentials latency while clients guess passwords at the password grant, with the
 * issuer's bound on password checks at once (rateLimit.passwordHashConcurrency) at its default
 * and lifted. See bench/README.md.
 *
 *   pnpm bench:guessing [--rounds 3] [--duration 10] [--guessers 16] [--rate 50] [--connections 4]
 */
import { execFileSync } from 'node:child_process'
import { randomBytes, scryptSync } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { TOKEN_REQUEST, validate } from './lib/load.ts'
import { machine, median } from './lib/report.ts'
import { watchCpu, type CpuShare } from './lib/cpu.ts'
import { onStopAll, runBenchmark, runPinned, startGatehouse, type Server } from './lib/servers.ts'

const RESULTS = join(fileURLToPath(new URL('.', import.meta.url)), 'results')
const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon/autocannon.js')
const CPU = { server: 0, load: 1 }
const CLI = { id: 'bench-cli', secret: 'bench-cli-secret-not-for-production' }
// Seconds the guessers run before the measured load starts, so that it meets a full burst.
const LEAD = 2

/** The server's configurations: what each sets under `rateLimit` (besides the defaults). */
const VARIANTS = [
  { name: 'no guessing', guess: false, rateLimit: '' },
  { name: 'guessing, default bound', guess: true, rateLimit: '' },
  { name: 'guessing, no bound', guess: true, rateLimit: '  passwordHashConcurrency: 100000\n' }
]

/** A scrypt PHC string in the issuer's format (packages/issuer/src/secrets.ts), for the bench user. */
function passwordHash (password: string): string {
  const salt = randomBytes(16)
  const key = scryptSync(password.normalize('NFKC'), salt, 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 256 * 2 ** 15 * 8 })
  return `$scrypt$ln=15,r=8,p=1$${salt.toString('base64url')}$${key.toString('base64url')}`
}

/**
 * The sign-in locks are lifted: a distributed guesser spreads over usernames and addresses
 * and never meets them, and this bench measures the bound on password checks alone.
 */
const yaml = (rateLimit: string, hash: string): string => `issuer: \${BENCH_ISSUER_URL}
listen:
  host: 127.0.0.1
  port: \${BENCH_PORT}
dataDir: \${BENCH_DATA_DIR}
log:
  level: info
rateLimit:
  tokenPerClient: 1000000000
  loginPerUsername: 1000000000
  loginPerIp: 1000000000
${rateLimit}scopes:
  - { name: api:read, audience: demo-api }
clients:
  - clientId: bench-service
    secretHash: sha256$0Ee5n5N8fQcRYeFVab6RCQ$lBei7gIWfFNQjUXWixnkSwE1V5Aq_R-5wTmepwqjXfw
    grants: [client_credentials]
    scopes: [api:read]
  - clientId: ${CLI.id}
    secret: ${CLI.secret}
    grants: [password]
    scopes: [api:read]
users:
  - username: bench-user
    passwordHash: '${hash}'
`

interface Run { p50: number, p99: number, max: number, perSecond: number, statuses: Record<string, number>, errors: number }

/** autocannon's CLI pinned to the load CPU, POSTing `body` to the token endpoint. */
async function autocannon (server: Server, body: string, authorization: string, args: string[]): Promise<Run> {
  const { code, stdout, stderr } = await runPinned(CPU.load, 'node', [AUTOCANNON, '--method', 'POST', '--json', '--body', body,
    '--headers', `content-type=${TOKEN_REQUEST.headers['content-type']}`, '--headers', `authorization=${authorization}`, ...args, server.tokenUrl])
  if (code !== 0) throw new Error(`autocannon exited ${code}:\n${stderr}`)
  const r = JSON.parse(stdout) as { duration: number, latency: { p50: number, p99: number, max: number }, requests: { total: number }, errors: number, timeouts: number, statusCodeStats?: Record<string, { count: number }> }
  const statuses = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([status, { count }]) => [status, count]))
  return { p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max, perSecond: r.requests.total / r.duration, statuses, errors: r.errors + r.timeouts }
}

const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`
const sumStatuses = (runs: Run[]): string => {
  const total = new Map<string, number>()
  for (const run of runs) for (const [s, n] of Object.entries(run.statuses)) total.set(s, (total.get(s) ?? 0) + n)
  return [...total].map(([s, n]) => `${n} × ${s}`).join(', ') || '-'
}

interface Round { measured: Run, guesses: Run | undefined, cpu: CpuShare }

/** One variant once: a fresh server, the guessers (if any) from LEAD s before the measured load. */
async function runVariant (variant: typeof VARIANTS[number], config: string, o: Options): Promise<Round> {
  const server = await startGatehouse(CPU.server, [], undefined, config)
  try {
    await validate(server)
    const guessing = variant.guess
      ? autocannon(server, 'grant_type=password&username=bench-user&password=a-wrong-guess&scope=api:read', basic(CLI.id, CLI.secret),
        ['--connections', String(o.guessers), '--duration', String(o.duration + LEAD + 1)])
      : undefined
    if (guessing !== undefined) await new Promise((resolve) => setTimeout(resolve, LEAD * 1000))
    const stopWatching = watchCpu(CPU.server, server.pid)
    const measured = await autocannon(server, TOKEN_REQUEST.body, TOKEN_REQUEST.headers.authorization,
      ['--connections', String(o.connections), '--overallRate', String(o.rate), '--duration', String(o.duration)])
    const cpu = stopWatching()
    return { measured, guesses: await guessing, cpu }
  } finally {
    await server.stop()
  }
}

interface Options { rounds: number, duration: number, guessers: number, rate: number, connections: number }

function readOptions (): Options {
  const { values } = parseArgs({ options: Object.fromEntries(Object.entries(DEFAULTS).map(([k, v]) => [k, { type: 'string' as const, default: String(v) }])) })
  const options = Object.fromEntries(Object.keys(DEFAULTS).map((k) => [k, Number(values[k])])) as unknown as Options
  for (const [k, n] of Object.entries(options)) if (!Number.isInteger(n) || n < 1) throw new Error(`--${k} must be a positive integer`)
  return options
}

const DEFAULTS: Options = { rounds: 3, duration: 10, guessers: 16, rate: 50, connections: 4 }

async function main (): Promise<number> {
  const o = readOptions()
  const host = machine()
  if (cpus().length < 2) throw new Error('needs at least 2 CPUs (server on CPU 0, load on CPU 1)')
  execFileSync('taskset', ['-a', '-p', '-c', String(CPU.load), String(process.pid)], { stdio: 'ignore' })
  // What os.availableParallelism() says inside the pinned server: the default bound.
  const serverCores = execFileSync('taskset', ['-c', String(CPU.server), 'node', '-p', 'require("node:os").availableParallelism()'], { encoding: 'utf8' }).trim()

  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-guessing-'))
  onStopAll(async () => { await rm(dir, { recursive: true, force: true }) })
  const hash = passwordHash('the-right-password')
  const configs = await Promise.all(VARIANTS.map(async (variant, i) => {
    const file = join(dir, `${i}.yaml`)
    await writeFile(file, yaml(variant.rateLimit, hash))
    return file
  }))
  const rounds: Round[][] = VARIANTS.map(() => [])
  for (let round = 1; round <= o.rounds; round++) {
    for (const [i, variant] of VARIANTS.entries()) {
      const r = await runVariant(variant, configs[i]!, o)
      rounds[i]!.push(r)
      console.log(`round ${round}/${o.rounds} ${variant.name}: client_credentials p50 ${r.measured.p50} ms, p99 ${r.measured.p99} ms, max ${r.measured.max} ms; ` +
        `guesses ${r.guesses === undefined ? '-' : `${Math.round(r.guesses.perSecond)}/s, p99 ${r.guesses.p99} ms`}; CPU ${CPU.server} other load ${Math.round(r.cpu.other)}%`)
    }
  }
  // Every client_credentials request must succeed; a guess gets 400 (checked) or 503 (refused).
  const isValid = rounds.flat().every((r) => Object.keys(r.measured.statuses).every((s) => s === '200') && r.measured.errors === 0 &&
    Object.keys(r.guesses?.statuses ?? {}).every((s) => s === '400' || s === '503'))
  const rows = VARIANTS.map((variant, i) => {
    const rs = rounds[i]!
    const med = (pick: (r: Round) => number): number => median(rs.map(pick))
    const guesses = rs.flatMap((r) => r.guesses === undefined ? [] : [r.guesses])
    return `| ${variant.name} | ${med((r) => r.measured.p50)} | ${med((r) => r.measured.p99)} | ${med((r) => r.measured.max)} | ${sumStatuses(rs.map((r) => r.measured))} | ` +
      `${guesses.length === 0 ? '-' : `${Math.round(median(guesses.map((g) => g.perSecond)))}/s (${sumStatuses(guesses)}), p99 ${median(guesses.map((g) => g.p99))} ms`} | ${Math.round(med((r) => r.cpu.other))}% |`
  })
  let table = `# client_credentials while ${o.guessers} clients guess passwords\n\n` +
    `client_credentials: ${o.connections} connections, ${o.rate} req/s in all, ${o.duration} s per round, ${o.rounds} rounds (medians). ` +
    `Guessers: ${o.guessers} connections of password grants with a wrong password, from ${LEAD} s before; sign-in locks lifted.\n` +
    `Server on CPU ${CPU.server}: default bound = os.availableParallelism() there = ${serverCores}, queue 4. Load on CPU ${CPU.load}. ${host}. ${new Date().toISOString()}\n\n` +
    '| server | cc p50 ms | cc p99 ms | cc max ms | cc statuses (all rounds) | guesses | other load CPU 0 |\n| --- | --- | --- | --- | --- | --- | --- |\n' +
    rows.join('\n') + '\n'
  if (!isValid) table += '\n**INVALID: a client_credentials request failed, or a guess got something else than 400 or 503.**\n'
  await mkdir(RESULTS, { recursive: true })
  await writeFile(join(RESULTS, 'password-guessing.md'), table)
  console.log('\n' + table)
  return isValid ? 0 : 1
}

await runBenchmark(main)
