/**
 * docker/, checked without a Docker engine (there is none on the CI machine):
 *
 * - the Dockerfiles: multi-stage on Node 24 slim, the build (tsc -b) then pnpm deploy of one
 *   package, a non-root runtime user, a HEALTHCHECK with Node's fetch, exec-form ENTRYPOINT and
 *   CMD running the package's bin on its dist/; the Node version these tests ran on is the
 *   one the Dockerfiles state;
 * - docker/compose.yaml: `docker-compose config` (Debian's docker-compose, which .ci/run
 *   installs) accepts it, and it has the shape asked for (Redis, the issuer, two gateways behind
 *   a round-robin entry, the resource server, configs mounted read-only, healthy dependencies);
 * - docker/compose/*.yaml hold the demo fixture of docker/demo/*.yaml, with compose's addresses;
 * - each image's start command, run outside Docker: the workspace built and every package
 *   deployed as its Dockerfile does (`pnpm run build`, `pnpm deploy --prod` from pnpm's store),
 *   holding dist/ and neither sources, tests nor tsx, started with plain `node` (no TypeScript
 *   loader: only dist/ can run) and the image's ENTRYPOINT and CMD against the very files
 *   compose mounts (their container addresses moved to 127.0.0.1 through the variables those
 *   files read), answering /healthz and the image's HEALTHCHECK, and serving a token through
 *   both gateways.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { parseConfig } from '@gatehouse/shared/config'
import { buildWorkspace } from '@gatehouse/test-kit/build'
import { startRedis, type RedisServer } from '@gatehouse/test-kit/redis-harness'
import { loadIssuerConfig } from '@gatehouse/issuer/load-config'
import { loadGatewayConfig } from '../packages/gateway/src/load-config.ts'
import { bearer, decodeJwt, DEMO, freePort, request, ROOT, Service, tail } from './fixtures/processes.ts'

const DOCKER = join(ROOT, 'docker')
const COMPOSE_FILE = join(DOCKER, 'compose.yaml')
const INSTALL_HINT = 'docker-compose is not installed: .ci/run installs it (apt-get install docker-compose, Debian\'s package); install it the same way to run this test'

/** The images, by the compose service that builds each and the package each deploys. */
const IMAGES = [
  { dockerfile: 'docker/issuer.Dockerfile', packageDir: 'packages/issuer', services: ['issuer'] },
  { dockerfile: 'docker/gateway.Dockerfile', packageDir: 'packages/gateway', services: ['gateway-1', 'gateway-2'] },
  { dockerfile: 'docker/resource-server.Dockerfile', packageDir: 'packages/demo', services: ['resource-server'] }
] as const

const PNPM_VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { packageManager: string }).packageManager.replace(/^pnpm@/, '')
/** The images' Node: the current LTS. */
const IMAGE_NODE_MAJOR = 24
/** The Node these tests run on, which the Dockerfiles state beside their own. */
const TEST_NODE_MAJOR = Number(process.versions.node.split('.')[0])

/** What a package ships (package.json `files`, what pnpm deploy copies): its bins and dist/. */
interface Manifest {
  bin: Record<string, string>
  imports?: Record<string, Record<string, string>>
  dependencies: Record<string, string>
  devDependencies?: Record<string, string>
  files?: string[]
}

// ---------------------------------------------------------------------------------------------
// Dockerfiles

interface Instruction { keyword: string, args: string }
interface Stage { image: string, name: string | undefined, instructions: Instruction[] }
interface Dockerfile { args: Record<string, string>, stages: Stage[] }

/** Instructions with continuations joined and comments dropped; stages split at FROM. */
function parseDockerfile (text: string): Dockerfile {
  const instructions: Instruction[] = []
  let pending = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line.startsWith('#') || (line === '' && pending === '')) continue
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `
      continue
    }
    const full = (pending + line).trim()
    pending = ''
    const match = /^(\S+)\s*(.*)$/s.exec(full)
    if (match !== null) instructions.push({ keyword: (match[1] ?? '').toUpperCase(), args: (match[2] ?? '').replace(/\s+/g, ' ').trim() })
  }
  const args: Record<string, string> = {}
  const stages: Stage[] = []
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const [image = '', as, name] = ins.args.split(' ')
      const resolved = image.replace(/\$\{(\w+)\}/g, (_m, key: string) => args[key] ?? `\${${key}}`)
      stages.push({ image: resolved, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] })
    } else if (stages.length === 0) {
      if (ins.keyword === 'ARG') {
        const [key = '', value = ''] = ins.args.split('=')
        args[key] = value
      }
    } else {
      stages.at(-1)?.instructions.push(ins)
    }
  }
  return { args, stages }
}

/** An exec-form (JSON array) instruction argument. */
function execForm (args: string | undefined): string[] {
  const value = JSON.parse(args ?? 'null') as unknown
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string')) throw new Error(`not an exec form: ${String(args)}`)
  return value as string[]
}

const last = (stage: Stage, keyword: string): Instruction | undefined => stage.instructions.filter((i) => i.keyword === keyword).at(-1)

/** `ENV A=b C=d` (unquoted values), every ENV of a stage. */
function envOf (stage: Stage): Record<string, string> {
  const env: Record<string, string> = {}
  for (const ins of stage.instructions.filter((i) => i.keyword === 'ENV')) {
    for (const pair of ins.args.split(' ')) {
      const at = pair.indexOf('=')
      if (at > 0) env[pair.slice(0, at)] = pair.slice(at + 1)
    }
  }
  return env
}

interface Image {
  dockerfile: string
  packageDir: string
  packageName: string
  manifest: Manifest
  /** `--filter X deploy ...` as the build stage runs it, without the target directory. */
  deployArgs: string[]
  workdir: string
  entrypoint: string[]
  cmd: string[]
  healthcheck: string[]
  env: Record<string, string>
  exposed: number[]
}

/** Reads one Dockerfile; throws when it lacks what the runtime checks below need. */
function readImage (spec: (typeof IMAGES)[number]): Image {
  const file = parseDockerfile(readFileSync(join(ROOT, spec.dockerfile), 'utf8'))
  const runtime = file.stages.at(-1)
  if (runtime === undefined) throw new Error(`${spec.dockerfile}: no FROM`)
  const deploy = file.stages.flatMap((s) => s.instructions).find((i) => i.keyword === 'RUN' && / deploy /.test(i.args))
  const deployed = /\bpnpm (--filter \S+ deploy [^&;]*?) \/out\b/.exec(deploy?.args ?? '')
  const healthcheck = /\bCMD (\[.*\])$/.exec(last(runtime, 'HEALTHCHECK')?.args ?? '')
  const manifest = JSON.parse(readFileSync(join(ROOT, spec.packageDir, 'package.json'), 'utf8')) as Manifest & { name: string }
  return {
    dockerfile: spec.dockerfile,
    packageDir: spec.packageDir,
    packageName: manifest.name,
    manifest,
    deployArgs: deployed?.[1]?.split(' ') ?? [],
    workdir: last(runtime, 'WORKDIR')?.args ?? '/',
    entrypoint: execForm(last(runtime, 'ENTRYPOINT')?.args),
    cmd: execForm(last(runtime, 'CMD')?.args),
    healthcheck: healthcheck === null ? [] : execForm(healthcheck[1]),
    env: envOf(runtime),
    exposed: (last(runtime, 'EXPOSE')?.args ?? '').split(' ').filter((p) => p !== '').map((p) => Number(p.replace(/\/tcp$/, '')))
  }
}

t.test('the Dockerfiles: multi-stage pnpm deploy, non-root, HEALTHCHECK, exec-form start', async (t) => {
  for (const spec of IMAGES) {
    t.test(spec.dockerfile, async (t) => {
      const file = parseDockerfile(readFileSync(join(ROOT, spec.dockerfile), 'utf8'))
      const image = readImage(spec)
      const [build, runtime] = [file.stages[0], file.stages.at(-1)]
      if (build === undefined || runtime === undefined) return t.fail('no stages')
      t.ok(file.stages.length >= 2, 'multi-stage')
      t.equal(build.name, 'build', 'the first stage is `build`')
      for (const stage of file.stages) t.equal(stage.image, `node:${IMAGE_NODE_MAJOR}-bookworm-slim`, `${stage.name ?? 'a stage'} is Node ${IMAGE_NODE_MAJOR} slim (${stage.image})`)
      const tested = /^# .*\bTested on: Node (\d+)\b/m.exec(readFileSync(join(ROOT, spec.dockerfile), 'utf8'))
      t.equal(Number(tested?.[1]), TEST_NODE_MAJOR, `states the Node these tests run on ("Tested on: Node ${TEST_NODE_MAJOR}")`)
      t.equal(file.args.PNPM_VERSION, PNPM_VERSION, 'pnpm is the version package.json pins')
      const buildRuns = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args)
      const step = (pattern: RegExp): number => buildRuns.findIndex((run) => pattern.test(run))
      t.match(buildRuns.join('\n'), /pnpm@\$\{PNPM_VERSION\}/, 'installs that pnpm')
      t.ok(step(/pnpm install --frozen-lockfile/) >= 0, 'installs from the lockfile as it is')
      t.ok(step(/^pnpm run build$/) > step(/pnpm install --frozen-lockfile/), 'then builds dist/ (pnpm run build)')
      t.ok(step(/ deploy /) > step(/^pnpm run build$/), 'then deploys')
      t.same(image.deployArgs.slice(0, 3), ['--filter', image.packageName, 'deploy'], `deploys ${image.packageName}`)
      t.ok(image.deployArgs.includes('--prod'), 'deploys production dependencies only')

      const runtimeKeywords = runtime.instructions.map((i) => i.keyword)
      for (const copy of runtime.instructions.filter((i) => i.keyword === 'COPY')) {
        t.match(copy.args, /^--from=build \/out /, `the runtime stage copies only the deployed package (${copy.args})`)
      }
      t.notOk(runtimeKeywords.includes('ADD'), 'no ADD in the runtime stage')
      const user = last(runtime, 'USER')?.args
      t.equal(user, 'node', 'runs as the node user')
      t.ok(runtimeKeywords.lastIndexOf('USER') > runtimeKeywords.lastIndexOf('RUN'), 'USER comes after the last RUN')
      t.equal(image.workdir, '/app', 'WORKDIR /app')
      // The issuer's and the gateway's images: the public port, then the admin listener's.
      const admin = spec.packageDir.includes('demo') ? undefined : image.exposed[1]
      t.equal(image.exposed.length, admin === undefined ? 1 : 2, admin === undefined ? 'EXPOSEs one port' : 'EXPOSEs the public port and the admin port')
      t.equal(image.healthcheck[0], 'node', 'HEALTHCHECK runs node (slim images have no curl)')
      t.match(image.healthcheck.join(' '), /fetch\(process\.env\.HEALTHCHECK_URL/, 'HEALTHCHECK fetches HEALTHCHECK_URL')
      t.equal(image.env.HEALTHCHECK_URL, `http://127.0.0.1:${admin ?? image.exposed[0] ?? 0}/healthz`, admin === undefined ? 'HEALTHCHECK_URL: /healthz on the exposed port' : 'HEALTHCHECK_URL: /healthz on the admin port')

      const manifest = image.manifest
      t.equal(image.entrypoint[0], 'node', 'ENTRYPOINT starts with node')
      t.ok(Object.values(manifest.bin).map((b) => b.replace(/^\.\//, '')).includes(image.entrypoint[1] ?? ''), `ENTRYPOINT runs the package's bin (${image.entrypoint.join(' ')})`)
      t.equal(image.entrypoint.length, 2, 'ENTRYPOINT is node and the bin, arguments are CMD: no loader flags')
      t.match(readFileSync(join(ROOT, spec.packageDir, image.entrypoint[1] ?? ''), 'utf8'), /^await import\('#cli'\)$/m, 'the bin imports #cli')
      t.match(manifest.imports?.['#cli']?.default, /^\.\/dist\/[\w-]+\.js$/, `#cli is dist/ by default (${manifest.imports?.['#cli']?.default ?? 'none'})`)
      t.equal(manifest.dependencies.tsx, undefined, `tsx is not a runtime dependency of ${image.packageName}`)
      t.same(manifest.files?.filter((f) => !f.startsWith('!') && !/^(README\.md|LICENSE)$/.test(f)).sort(), ['bin', 'dist'], 'it ships bin/ and dist/, with its README and LICENSE (package.json files)')
      if (spec.packageDir !== 'packages/demo') {
        const name = spec.packageDir.replace('packages/', '')
        t.same(image.cmd, ['--config', `/etc/gatehouse/${name}.yaml`], `CMD --config /etc/gatehouse/${name}.yaml`)
      }
    })
  }
})

t.test('the .dockerignore files: one per Dockerfile, the same, leaving out what no image needs', async (t) => {
  const texts = IMAGES.map((spec) => {
    const file = join(ROOT, `${spec.dockerfile}.dockerignore`)
    t.ok(existsSync(file), `${spec.dockerfile}.dockerignore`)
    return existsSync(file) ? readFileSync(file, 'utf8') : ''
  })
  t.ok(texts.every((text) => text === texts[0]), 'all three are the same')
  const patterns = (texts[0] ?? '').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  for (const needed of ['.git', '**/node_modules', '**/.data', '**/.tap', 'bench/results']) {
    t.ok(patterns.includes(needed), `leaves out ${needed}`)
  }
  for (const kept of ['packages', 'pnpm-lock.yaml', 'package.json', 'pnpm-workspace.yaml', 'bench', 'tsconfig.base.json', 'tsconfig.build.json']) {
    t.notOk(patterns.includes(kept), `keeps ${kept} (the build needs it)`)
  }
})

// ---------------------------------------------------------------------------------------------
// docker/compose.yaml

/** A compose service: free-form, read field by field below. */
type ComposeService = Record<string, any>
interface Compose { services: Record<string, ComposeService>, volumes?: Record<string, unknown> }

/** YAML text as data, through the project's own loader (no schema; `${...}` is not expected). */
function yamlData<T> (text: string, file: string): T {
  return parseConfig<T>(text, file, {}, { env: {} })
}

interface Mount { source: string, target: string, readOnly: boolean }

/** A service's mounts, from the short (`a:b:ro`) or the long syntax; sources resolved against `base`. */
function mountsOf (service: ComposeService, base: string): Mount[] {
  return ((service.volumes ?? []) as unknown[]).map((v) => {
    if (typeof v === 'string') {
      const [source = '', target = '', mode = ''] = v.split(':')
      return { source: source.startsWith('.') || isAbsolute(source) ? resolve(base, source) : source, target, readOnly: mode.split(',').includes('ro') }
    }
    const long = v as { source: string, target: string, read_only?: boolean, type?: string }
    return { source: long.type === 'volume' || !/^[./]/.test(long.source) ? long.source : resolve(base, long.source), target: long.target, readOnly: long.read_only === true }
  })
}

/** A service's published ports as `host_ip:published:target`. */
function portsOf (service: ComposeService): string[] {
  return ((service.ports ?? []) as unknown[]).map((p) => {
    if (typeof p === 'string') return p.replace(/\/tcp$/, '')
    const long = p as { host_ip?: string, published: string | number, target: number }
    return `${long.host_ip ?? ''}:${String(long.published)}:${long.target}`
  })
}

/** The environment as a map (compose accepts a map or a list of `K=V`). */
function environmentOf (service: ComposeService): Record<string, string> {
  const env = service.environment ?? {}
  if (!Array.isArray(env)) return Object.fromEntries(Object.entries(env as Record<string, unknown>).map(([k, v]) => [k, String(v)]))
  return Object.fromEntries((env as string[]).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]))
}

interface Run { code: number | null, stdout: string, stderr: string, error?: NodeJS.ErrnoException }

/** Runs a command to its end (killed after `timeoutMs`). */
async function run (command: string, args: string[], options: { cwd?: string, env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<Run> {
  return await new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd ?? ROOT, env: options.env ?? cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${options.timeoutMs ?? 60_000} ms)`
      child.kill('SIGKILL')
    }, options.timeoutMs ?? 60_000)
    child.once('error', (error: NodeJS.ErrnoException) => { clearTimeout(timer); resolve({ code: null, stdout, stderr, error }) })
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

/** Our environment without tap's hooks and without anything compose or the services read. */
function cleanEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(TAP|_TAPJS|NODE_OPTIONS$|NODE_PATH$|COMPOSE_|DOCKER_|REDIS_URL$|LOG_LEVEL$|HEALTHCHECK_URL$|GATEHOUSE_|GATEWAY_|ISSUER_|API_)/.test(key)) continue
    env[key] = value
  }
  return { ...env, ...extra }
}

const readCompose = (): Compose => yamlData<Compose>(readFileSync(COMPOSE_FILE, 'utf8'), 'docker/compose.yaml')

t.test('docker-compose accepts docker/compose.yaml, and it has the asked-for shape', async (t) => {
  const result = await run('docker-compose', ['-f', 'docker/compose.yaml', 'config'], { timeoutMs: 60_000 })
  if (result.error?.code === 'ENOENT') return t.fail(INSTALL_HINT)
  t.equal(result.code, 0, `docker-compose -f docker/compose.yaml config exits 0\n${tail(result.stderr, 4000)}`)
  if (result.code !== 0) return
  const compose = yamlData<Compose>(result.stdout, 'docker-compose config')
  const services = compose.services
  t.same(Object.keys(services).sort(), ['entry', 'gateway-1', 'gateway-2', 'issuer', 'redis', 'resource-server'], 'Redis, the issuer, two gateways, the entry, the resource server')

  const images = IMAGES.map(readImage)
  for (const [i, spec] of IMAGES.entries()) {
    const image = images[i] as Image
    for (const name of spec.services) {
      const service = services[name] ?? {}
      t.equal(resolve(DOCKER, service.build?.context ?? ''), resolve(ROOT), `${name}: built from the repository root`)
      t.equal(service.build?.dockerfile, spec.dockerfile, `${name}: from ${spec.dockerfile}`)
      const config = image.cmd[image.cmd.indexOf('--config') + 1]
      if (config !== undefined && image.cmd.includes('--config')) {
        const mount = mountsOf(service, DOCKER).find((m) => m.target === config)
        const expected = join(DOCKER, 'compose', config.replace('/etc/gatehouse/', ''))
        t.equal(mount?.source, expected, `${name}: ${config} is ${expected.replace(ROOT, '')}`)
        t.equal(mount?.readOnly, true, `${name}: mounted read-only`)
      }
      t.ok(service.healthcheck !== undefined || image.healthcheck.length > 0, `${name}: has a health check (its image's)`)
    }
  }
  for (const name of ['issuer', 'gateway-1', 'gateway-2']) {
    t.equal(environmentOf(services[name] ?? {}).REDIS_URL, 'redis://redis:6379', `${name}: REDIS_URL is the redis service`)
  }
  t.same(services['gateway-1']?.volumes, services['gateway-2']?.volumes, 'both gateways mount the same config')
  t.ok(mountsOf(services.issuer ?? {}, DOCKER).some((m) => m.target === '/var/lib/gatehouse/issuer' && compose.volumes?.[m.source] !== undefined), 'the issuer has a named data volume')
  for (const name of ['redis', 'entry']) t.ok(services[name]?.healthcheck?.test !== undefined, `${name}: has a health check`)
  for (const [name, service] of Object.entries(services)) {
    for (const [dependency, condition] of Object.entries((service.depends_on ?? {}) as Record<string, { condition?: string }>)) {
      t.equal(condition.condition, 'service_healthy', `${name} waits for ${dependency} to be healthy`)
    }
  }
  t.same(Object.keys(services.entry?.depends_on ?? {}).sort(), ['gateway-1', 'gateway-2'], 'the entry waits for both gateways')
  t.same(portsOf(services.entry ?? {}), ['127.0.0.1:8080:8080'], 'the entry is published on 127.0.0.1:8080')
  t.same(portsOf(services.issuer ?? {}), ['127.0.0.1:4000:4000'], 'the issuer is published on 127.0.0.1:4000 (tokens from the host)')
  for (const name of ['gateway-1', 'gateway-2', 'redis']) t.same(portsOf(services[name] ?? {}), [], `${name} is not published`)

  // The entry: round robin over both gateways, on their exposed port.
  const nginx = mountsOf(services.entry ?? {}, DOCKER).find((m) => m.target.startsWith('/etc/nginx/'))
  t.equal(nginx?.readOnly, true, 'the entry\'s config is mounted read-only')
  const conf = readFileSync(nginx?.source ?? join(DOCKER, 'compose/nginx.conf'), 'utf8')
  const upstream = /upstream\s+(\S+)\s*\{([^}]*)\}/.exec(conf)
  const servers = [...(upstream?.[2] ?? '').matchAll(/^\s*server\s+([^\s;]+)/gm)].map((m) => m[1])
  const gatewayPort = images[1]?.exposed[0]
  t.same(servers, [`gateway-1:${String(gatewayPort)}`, `gateway-2:${String(gatewayPort)}`], 'the entry balances over both gateways')
  t.notMatch(upstream?.[2] ?? '', /\b(least_conn|ip_hash|hash|random)\b/, 'round robin (nginx\'s default)')
  t.match(conf, new RegExp(`proxy_pass http://${upstream?.[1] ?? '-'};`), 'proxies to that group')
  t.match(conf, /proxy_set_header X-Request-Id \$request_id;/, 'the entry sets its own request id (the gateways trust it: a caller must not choose one)')
  t.match(conf, /listen 8080;/, 'listens on 8080')
})

// ---------------------------------------------------------------------------------------------
// docker/compose/*.yaml

t.test('docker/compose/*.yaml: the demo fixture, with compose\'s addresses', async (t) => {
  const dataDir = join(ROOT, '.data/issuer')
  const composeIssuer = loadIssuerConfig(join(DOCKER, 'compose/issuer.yaml'), {})
  const composeGateway = loadGatewayConfig(join(DOCKER, 'compose/gateway.yaml'), {})
  t.equal(composeIssuer.issuer, 'http://issuer:4000', 'the issuer is http://issuer:4000 inside compose')
  t.same(composeIssuer.listen, { host: '0.0.0.0', port: 4000 }, 'the issuer listens on all interfaces, 4000')
  t.same(composeIssuer.admin, { listen: { host: '0.0.0.0', port: 4090 } }, 'its admin listener: 4090, inside compose\'s network')
  t.equal(composeIssuer.dataDir, '/var/lib/gatehouse/issuer', 'its data directory is the image\'s volume')
  t.equal(composeGateway.issuer, 'http://issuer:4000', 'the gateways expect (and discover) http://issuer:4000')
  t.same(composeGateway.listen, { host: '0.0.0.0', port: 8080, http2: false }, 'the gateways listen on all interfaces, 8080')
  t.same(composeGateway.admin, { listen: { host: '0.0.0.0', port: 8090 } }, 'their admin listener: 8090')
  t.match(JSON.stringify(composeGateway.routes), /http:\/\/resource-server:4001/, 'the upstream is the resource-server service')
  const addresses = [composeIssuer.issuer, composeIssuer.listen, composeGateway.issuer, composeGateway.listen, composeGateway.routes.map((r) => [r.upstreams, r.backchannelLogoutUri])]
  t.notMatch(JSON.stringify(addresses), /127\.0\.0\.1|localhost/, 'no loopback address is left in the services\' addresses')

  // With the local demo's addresses, they are the demo's configs.
  const demoEnv = { ISSUER_PORT: '4000', API_PORT: '4001', GATEWAY_PORT: '8080', GATEHOUSE_DATA_DIR: dataDir }
  const localEnv = { ISSUER_URL: 'http://127.0.0.1:4000', ISSUER_HOST: '127.0.0.1', API_URL: 'http://127.0.0.1:4001', GATEWAY_HOST: '127.0.0.1', GATEHOUSE_DATA_DIR: dataDir }
  const issuer = loadIssuerConfig(join(DOCKER, 'compose/issuer.yaml'), localEnv)
  t.same({ ...issuer, admin: undefined }, { ...loadIssuerConfig(join(DOCKER, 'demo/issuer.yaml'), demoEnv), admin: undefined }, 'issuer: the demo fixture (scopes, clients, users, settings), the admin listener apart')
  const gateway = { ...loadGatewayConfig(join(DOCKER, 'compose/gateway.yaml'), localEnv) }
  t.same(gateway.trustProxy, ['uniquelocal'], 'the gateways trust the entry\'s X-Forwarded-For (compose\'s private network)')
  t.same({ ...gateway, trustProxy: false, admin: undefined }, { ...loadGatewayConfig(join(DOCKER, 'demo/gateway.yaml'), demoEnv), admin: undefined }, 'gateway: the demo routes and settings, the admin listener apart')
})

// ---------------------------------------------------------------------------------------------
// The images' start commands, outside Docker

/** Files under `dir` outside node_modules, relative to `base`. */
function * shippedFiles (dir: string, base: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules') continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield * shippedFiles(path, base)
    else yield path.slice(base.length + 1)
  }
}

/** Deploys a package as its Dockerfile does, into `dir` (pnpm's store; registry metadata when pnpm lacks it). */
async function deploy (image: Image, dir: string): Promise<void> {
  const args = ['-y', `pnpm@${PNPM_VERSION}`, ...image.deployArgs, dir]
  const result = await run('npx', args, { timeoutMs: 90_000 })
  if (result.code !== 0) throw new Error(`npx ${args.join(' ')} failed (${String(result.code)}):\n${tail(result.stdout + result.stderr, 4000)}`)
}

t.test('each image\'s ENTRYPOINT and CMD start the deployed package from the compose configs', async (t) => {
  const compose = readCompose()
  const [issuerImage, gatewayImage, apiImage] = IMAGES.map(readImage) as [Image, Image, Image]
  const work = mkdtempSync(join(tmpdir(), 'gatehouse-docker-'))
  t.teardown(() => { rmSync(work, { recursive: true, force: true }) })
  const services: Service[] = []
  t.teardown(() => {
    if (t.passing()) return
    for (const s of services) console.error(`\n===== ${s.name} (${s.url}) output =====\n${tail(s.output, 20_000)}`)
  })

  const started = performance.now()
  const deployDir = (image: Image): string => join(work, image.packageName.replace('@gatehouse/', ''))
  // allSettled: a failed build or deploy must not leave the redis-server running (the file would hang).
  const [redisStart, deployed] = await Promise.allSettled([
    startRedis(),
    (async () => {
      // The build stage's `pnpm run build`: pnpm deploy ships dist/, which it makes.
      await buildWorkspace(ROOT)
      await Promise.all([issuerImage, gatewayImage, apiImage].map(async (image) => { await deploy(image, deployDir(image)) }))
    })()
  ])
  if (redisStart?.status === 'fulfilled') t.teardown(async () => { await redisStart.value.stop() })
  for (const result of [redisStart, deployed]) if (result?.status === 'rejected') throw result.reason
  const redis = (redisStart as PromiseFulfilledResult<RedisServer>).value
  t.comment(`built, deployed 3 packages and started redis in ${Math.round(performance.now() - started)} ms`)

  for (const image of [issuerImage, gatewayImage, apiImage]) {
    const dir = deployDir(image)
    // The package itself, and the workspace packages it depends on (copied into .pnpm).
    const roots = [dir, ...readdirSync(join(dir, 'node_modules/.pnpm')).filter((name) => name.startsWith('@gatehouse+')).map((name) => {
      return join(dir, 'node_modules/.pnpm', name, 'node_modules/@gatehouse', name.replace(/^@gatehouse\+/, '').replace(/@.*$/, ''))
    })]
    const files = roots.flatMap((root) => [...shippedFiles(root, root)].map((file) => ({ root: root.replace(dir, '.'), file })))
    const unexpected = files.filter(({ file }) => !/^(package\.json|README\.md|LICENSE|(bin|dist)\/.+)$/.test(file))
    t.same(unexpected, [], `${image.packageName}: the deployment holds package.json, README, LICENSE, bin/ and dist/ only (${roots.length} packages)`)
    t.same(files.filter(({ file }) => /\.[mc]?ts$/.test(file) && !/\.d\.[mc]?ts$/.test(file)), [], `${image.packageName}: no TypeScript source`)
    t.same(readdirSync(join(dir, 'node_modules/.pnpm')).filter((name) => /^tsx@/.test(name)), [], `${image.packageName}: no tsx`)
    const cli = await run(process.execPath, ['--input-type=module', '-e', 'process.stdout.write(import.meta.resolve("#cli"))'], { cwd: dir })
    t.equal(cli.stdout, `file://${dir}/${(image.manifest.imports?.['#cli']?.default ?? '').replace(/^\.\//, '')}`, `${image.packageName}: its bin's #cli is dist/ under plain node (${cli.stdout.replace(dir, '')})`)
  }

  const ports = { issuer: await freePort(), issuerAdmin: await freePort(), api: await freePort(), gateways: [await freePort(), await freePort()], gatewayAdmins: [await freePort(), await freePort()] }
  const issuerUrl = `http://127.0.0.1:${ports.issuer}`
  const apiUrl = `http://127.0.0.1:${ports.api}`
  /** Compose's container addresses, as this test runs them. */
  const local = (value: string, containerPort: number, localPort: number): string => value
    .replaceAll('redis://redis:6379', redis.url)
    .replaceAll('http://issuer:4000', issuerUrl)
    .replaceAll('http://resource-server:4001', apiUrl)
    .replaceAll(`http://127.0.0.1:${containerPort}/`, `http://127.0.0.1:${localPort}/`)

  /** The image's start command with /etc/gatehouse files replaced by the files compose mounts there. */
  const command = (image: Image, serviceName: string, port: number, rewriteArg: (arg: string, previous: string | undefined) => string = (a) => a, adminPort?: number): { args: string[], env: Record<string, string>, readyPath: string } => {
    const service = compose.services[serviceName] ?? {}
    const mounts = mountsOf(service, DOCKER)
    const containerPort = image.exposed[0] ?? 0
    const [node, script = '', ...rest] = [...image.entrypoint, ...image.cmd]
    t.equal(node, 'node', `${serviceName}: runs node`)
    const args = [join(work, image.packageName.replace('@gatehouse/', ''), script.replace(/^\/app\//, '')), ...rest.map((arg, i) => {
      const mount = mounts.find((m) => m.target === arg)
      if (mount !== undefined) return mount.source
      return rewriteArg(arg, rest[i - 1])
    })]
    const env: Record<string, string> = { ...image.env }
    for (const [key, value] of Object.entries(environmentOf(service))) env[key] = local(value, containerPort, port)
    env.HEALTHCHECK_URL = local(env.HEALTHCHECK_URL ?? '', containerPort, port)
    // The admin listener's port (the image's second) as this test runs it.
    const containerAdmin = image.exposed[1]
    if (containerAdmin !== undefined && adminPort !== undefined) env.HEALTHCHECK_URL = local(env.HEALTHCHECK_URL, containerAdmin, adminPort)
    env.LOG_LEVEL = 'warn'
    // Readiness where the HEALTHCHECK looks: the admin port when there is one.
    return { args, env, readyPath: env.HEALTHCHECK_URL.replace(/\/healthz$/, '/readyz') }
  }

  const start = async (name: string, spec: ReturnType<typeof command>, port: number, extraEnv: Record<string, string>): Promise<Service> => {
    // Plain node, as the image runs it: only dist/ can run.
    const service = new Service({ name, args: spec.args, nodeArgs: [], port, readyPath: spec.readyPath, env: { ...spec.env, ...extraEnv } })
    services.push(service)
    t.teardown(async () => { await service.stop() })
    await service.start(60_000)
    return service
  }

  // In compose's depends_on order: the issuer, the resource server, then both gateways.
  const issuerSpec = command(issuerImage, 'issuer', ports.issuer, undefined, ports.issuerAdmin)
  const issuer = await start('issuer', issuerSpec, ports.issuer, {
    ISSUER_URL: issuerUrl, ISSUER_HOST: '127.0.0.1', ISSUER_PORT: String(ports.issuer), ISSUER_ADMIN_HOST: '127.0.0.1', ISSUER_ADMIN_PORT: String(ports.issuerAdmin), GATEHOUSE_DATA_DIR: join(work, 'issuer-data')
  })
  const apiSpec = command(apiImage, 'resource-server', ports.api, (arg, previous) => {
    if (previous === '--issuer') return local(arg, 0, 0)
    if (previous === '--host') return arg === '0.0.0.0' ? '127.0.0.1' : arg
    if (previous === '--port') return arg === String(apiImage.exposed[0]) ? String(ports.api) : arg
    return arg
  })
  t.same(apiImage.cmd, ['--issuer', 'http://issuer:4000', '--host', '0.0.0.0', '--port', String(apiImage.exposed[0])], 'the resource server\'s CMD: compose\'s issuer, all interfaces, the exposed port')
  const api = await start('resource-server', apiSpec, ports.api, {})
  const gatewaySpecs = ports.gateways.map((port, i) => command(gatewayImage, `gateway-${i + 1}`, port, undefined, ports.gatewayAdmins[i]))
  const gateways = await Promise.all(ports.gateways.map(async (port, i) => await start(`gateway-${i + 1}`, gatewaySpecs[i] as ReturnType<typeof command>, port, {
    GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: String(port), GATEWAY_ADMIN_HOST: '127.0.0.1', GATEWAY_ADMIN_PORT: String(ports.gatewayAdmins[i]), ISSUER_URL: issuerUrl, API_URL: apiUrl
  })))
  t.comment(`all started in ${Math.round(performance.now() - started)} ms`)

  for (const [service, image, spec] of [[issuer, issuerImage, issuerSpec], [api, apiImage, apiSpec], ...gateways.map((g, i) => [g, gatewayImage, gatewaySpecs[i] as ReturnType<typeof command>] as const)] as const) {
    const healthUrl = spec.env.HEALTHCHECK_URL ?? ''
    const health = await request(healthUrl)
    t.equal(health.status, 200, `${service.name}: ${healthUrl.replace(/^http:\/\/127\.0\.0\.1:\d+/, '')} answers 200 on ${new URL(healthUrl).port === String(service.port) ? 'its port' : 'its admin port'}`)
    const [node, ...args] = image.healthcheck
    t.equal(node, 'node', `${service.name}: the HEALTHCHECK runs node`)
    const check = await run(process.execPath, args, { env: cleanEnv({ HEALTHCHECK_URL: spec.env.HEALTHCHECK_URL ?? '' }), timeoutMs: 15_000 })
    t.equal(check.code, 0, `${service.name}: the image's HEALTHCHECK passes against ${spec.env.HEALTHCHECK_URL ?? ''}${check.stderr === '' ? '' : `\n${check.stderr}`}`)
  }
  const closed = await run(process.execPath, issuerImage.healthcheck.slice(1), { env: cleanEnv({ HEALTHCHECK_URL: `http://127.0.0.1:${await freePort()}/healthz` }), timeoutMs: 15_000 })
  t.equal(closed.code, 1, 'the HEALTHCHECK fails when nothing answers')

  // The configs wire together: a token from the issuer is accepted by both gateways.
  const tokenRes = await request<{ access_token: string }>(`${issuer.url}/oauth2/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${DEMO.service.id}:${DEMO.service.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&scope=api%3Aread'
  })
  t.equal(tokenRes.status, 200, 'a client_credentials token')
  t.equal(decodeJwt(tokenRes.body.access_token).payload.iss, issuerUrl, 'its iss is ISSUER_URL')
  for (const gateway of gateways) {
    const res = await request<{ path: string }>(`${gateway.url}/api/docker`, { headers: bearer(tokenRes.body.access_token) })
    t.equal(res.status, 200, `${gateway.name}: /api with the token is 200`)
    t.equal(res.body.path, '/api/docker', `${gateway.name}: forwarded to the resource server`)
    t.equal((await request(`${gateway.url}/api/docker`)).status, 401, `${gateway.name}: /api without a token is 401`)
  }
})
