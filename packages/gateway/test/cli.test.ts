/**
 * The gatehouse-gateway command: `check` prints the route table or every problem (exit 1);
 * serving reloads on SIGHUP and exits 0 on SIGTERM.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import { SOURCE_NODE_ARGS } from '@gatehouse/test-kit/source-run'
import { startUpstream } from './fixtures/upstream.ts'

const BIN = fileURLToPath(new URL('../bin/gatehouse-gateway.js', import.meta.url))
const DEMO = fileURLToPath(new URL('../../../docker/demo/gateway.yaml', import.meta.url))

function run (...args: string[]): { status: number | null, stdout: string, stderr: string } {
  const res = spawnSync(process.execPath, [...SOURCE_NODE_ARGS, BIN, ...args], { encoding: 'utf8', env: { ...process.env, REDIS_URL: '' } })
  return { status: res.status, stdout: res.stdout, stderr: res.stderr }
}

t.test('--version and -v print the package\'s version, exit 0', async (t) => {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  for (const flag of ['--version', '-v']) {
    const res = run(flag)
    t.equal(res.status, 0, `${flag}: exit 0 ${res.stderr}`)
    t.equal(res.stdout, `${version}\n`, `${flag}: ${version}`)
  }
})

t.test('check: the demo file and its route table', async (t) => {
  const res = run('check', '--config', DEMO)
  t.equal(res.status, 0, res.stderr)
  const lines = res.stdout.trim().split('\n')
  t.match(lines[0], /gateway\.yaml: ok, 2 routes/)
  t.match(lines[1], /^PREFIX\s+PATH\s+UPSTREAMS\s+AUTH\s+SCOPES\s+RATE LIMIT/)
  t.match(lines[2], /^\/api\s+keep\s+http:\/\/127\.0\.0\.1:4001\s+required aud=demo-api\s+GET,HEAD: api:read; \*: api:write\s+-\s+30s\s+http:\/\/127\.0\.0\.1:4001\/backchannel-logout/)
  t.match(lines[3], /^\/public\s+keep\s+http:\/\/127\.0\.0\.1:4001\s+none\s+-/)
})

t.test('check: a bad file prints every problem and exits 1', async (t) => {
  const file = join(t.testdir(), 'gateway.yaml')
  writeFileSync(file, `issuer: http://127.0.0.1:4000
routes:
  - prefix: api
    upstreams: [http://a]
  - prefix: /b
    upstreams: []
    auth: sometimes
`)
  const res = run('check', '--config', file)
  t.equal(res.status, 1)
  t.match(res.stderr, /gateway\.yaml:3:13 routes\[0\]\.prefix/)
  t.match(res.stderr, /gateway\.yaml:6:5 routes\[1\]\.upstreams must NOT have fewer than 1 items/)
  t.match(res.stderr, /gateway\.yaml:7:11 routes\[1\]\.auth/)
  t.equal(res.stdout, '')
})

t.test('check: a scopes key that is no HTTP method', async (t) => {
  const file = join(t.testdir(), 'gateway.yaml')
  writeFileSync(file, `issuer: http://127.0.0.1:4000
routes:
  - { prefix: /c, upstreams: [http://c], scopes: { GTE: [api:read], '*': [api:write] } }
`)
  const res = run('check', '--config', file)
  t.equal(res.status, 1)
  t.match(res.stderr, /gateway\.yaml:3:52 routes\[0\]\.scopes\.GTE "GTE" is not an HTTP method/)
})

t.test('run as a program: node --single-threaded-gc on one CPU, or as GATEHOUSE_SINGLE_THREADED_GC says', async (t) => {
  const cpus = availableParallelism()
  t.ok(cpus >= 2, `this test needs 2 CPUs to tell one from more (${cpus})`)
  const root = t.testdir()
  const dir = join(root, 'a dir')
  mkdirSync(dir)
  // What node was started with, from inside it (NODE_OPTIONS passes through the shell's exec).
  const probe = join(root, 'probe.cjs')
  writeFileSync(probe, 'process.stderr.write("execArgv=" + JSON.stringify(process.execArgv) + "\\n")\n')
  const config = join(dir, 'gateway file.yaml')
  writeFileSync(config, readFileSync(DEMO))
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  // taskset sets the process's CPU set, as Docker's --cpuset-cpus does; the bin itself is executed.
  const launch = (cpuList: string, args: string[], choice?: string, extra: NodeJS.ProcessEnv = {}): { status: number | null, stdout: string, execArgv: unknown } => {
    const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: '', NODE_OPTIONS: [...SOURCE_NODE_ARGS, '--require', probe].join(' '), ...extra }
    delete env.GATEHOUSE_SINGLE_THREADED_GC
    if (choice !== undefined) env.GATEHOUSE_SINGLE_THREADED_GC = choice
    const res = spawnSync('taskset', ['-c', cpuList, BIN, ...args], { encoding: 'utf8', env })
    const line = /^execArgv=(.*)$/m.exec(res.stderr)?.[1]
    return { status: res.status, stdout: res.stdout, execArgv: line === undefined ? res.stderr : JSON.parse(line) }
  }
  const all = `0-${cpus - 1}`
  const cases: Array<[string, string | undefined, string[]]> = [
    ['0', undefined, ['--single-threaded-gc']],
    [all, undefined, []],
    [all, 'true', ['--single-threaded-gc']],
    ['0', '0', []]
  ]
  for (const [cpuList, choice, expected] of cases) {
    const res = launch(cpuList, ['--version'], choice)
    t.equal(res.status, 0, `CPUs ${cpuList}, GATEHOUSE_SINGLE_THREADED_GC=${choice ?? '(unset)'}: exit 0`)
    t.equal(res.stdout, `${version}\n`, 'the CLI ran')
    t.same(res.execArgv, expected, `CPUs ${cpuList}, GATEHOUSE_SINGLE_THREADED_GC=${choice ?? '(unset)'}: node ${JSON.stringify(expected)}`)
  }
  // GNU nproc prints OMP_NUM_THREADS when it is set (review finding): a machine learning
  // container's OMP_NUM_THREADS=1 is no single CPU.
  const omp = launch(all, ['--version'], undefined, { OMP_NUM_THREADS: '1', OMP_THREAD_LIMIT: '1' })
  t.same(omp.execArgv, [], `CPUs ${all} with OMP_NUM_THREADS=1: node []`)
  // Arguments reach the CLI as they were given (a space in a path).
  const check = launch('0', ['check', '--config', config])
  t.equal(check.status, 0, 'check through the launcher: exit 0')
  t.match(check.stdout, /gateway file\.yaml: ok, 2 routes/)
})

t.test('usage errors exit 1', async (t) => {
  t.equal(run('check').status, 1, 'no --config')
  t.equal(run('frobnicate', '--config', DEMO).status, 1, 'unknown command')
  t.equal(run('check', '--config', '/no/such/file.yaml').status, 1, 'missing file')
})

t.test('serve: SIGHUP reloads the routes, SIGTERM stops cleanly', async (t) => {
  const a = await startUpstream(t, 'a')
  const b = await startUpstream(t, 'b')
  const port = await freePort()
  const file = join(t.testdir(), 'gateway.yaml')
  const noIssuer = await freePort()
  const yaml = (upstream: string): string => `issuer: http://127.0.0.1:${noIssuer}\nlisten: { host: 127.0.0.1, port: ${port} }\nlog: { level: warn }\nroutes: [{ prefix: /x, upstreams: ['${upstream}'], auth: none }]\n`
  writeFileSync(file, yaml(a.url))
  const child = spawn(process.execPath, [...SOURCE_NODE_ARGS, BIN, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, REDIS_URL: '' } })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const base = `http://127.0.0.1:${port}`
  const upstreamOf = async (): Promise<string | undefined> => {
    try { return ((await (await fetch(`${base}/x/1`)).json()) as { upstream?: string }).upstream } catch { return undefined }
  }
  // Polled with a bound a loaded 2-core machine does not miss (a start takes seconds there).
  const until = async (want: string): Promise<boolean> => {
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      if (await upstreamOf() === want) return true
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return false
  }
  t.ok(await until('a'), 'serving')
  writeFileSync(file, yaml(b.url))
  child.kill('SIGHUP')
  t.ok(await until('b'), 'reloaded')
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit') as [number | null]
  t.equal(code, 0, output)
})
