/**
 * No process a test starts outlives its test process, however that dies (issue 9, item 17):
 * SIGKILL, SIGTERM, an uncaught exception, and tap's own per-file timeout (an IPC message,
 * then SIGALRM, then SIGKILL: async teardowns do not finish, `process.on('exit')` does not
 * run). A real test process (test/fixtures/hold-children.ts) starts a redis-server through
 * the shared harness, the demo resource server through processes.ts and a `sleep` in its own
 * session, and stops none of them; once it is dead, all of them and its watchdog must be gone.
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { REAPER_TOKEN_VARIABLE } from '@gatehouse/test-kit/child-reaper'
import { SOURCE_NODE_ARGS } from '@gatehouse/test-kit/source-run'
import { ROOT, StopWaiting, waitFor } from './fixtures/processes.ts'

const FIXTURE = join(ROOT, 'test/fixtures/hold-children.ts')
const TAP = join(ROOT, 'node_modules/tap/dist/esm/run.mjs')
/** Generous: starting three processes on a loaded 2-core machine. */
const TIMEOUT_MS = 60_000

/** What the fixture started, and its own pid and watchdog token. */
interface Report { pid: number, token: string, watchdog: number, children: Record<string, number> }

/** A live process's start time, from /proc/PID/stat; undefined when gone or a zombie. */
function liveProcess (pid: number): string | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return fields[0] === 'Z' || fields[0] === 'X' ? undefined : fields[19]
}

/** pids of processes whose environment carries `token` (what the watchdog looks for). */
function carriers (token: string): number[] {
  const marker = `${REAPER_TOKEN_VARIABLE}=${token}`
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(marker)
    } catch {
      return false
    }
  })
}

interface Run {
  /** Arguments to `node`: the fixture, or tap running it. */
  args: string[]
  /** Ends the fixture's process (`report.pid`) once it has started its children. */
  kill: (pid: number) => void
  cwd?: string
}

/** Our environment without tap's: the child is a test process of its own, not one of this run's. */
function ownEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) if (!/^(TAP|_TAPJS|NODE_OPTIONS$)/.test(key)) env[key] = value
  return env
}

/** Runs a test process, waits for its report, lets `kill` end it, and checks the aftermath. */
async function dies (t: Test, { args, kill, cwd = ROOT }: Run): Promise<string> {
  const reportFile = join(t.testdir(), 'report.json')
  writeFileSync(reportFile, '')
  const child = spawn(process.execPath, args, { cwd, env: { ...ownEnv(), HOLD_CHILDREN_REPORT: reportFile }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const closed = once(child, 'close')
  t.teardown(() => { child.kill('SIGKILL') })

  const report = await waitFor('the test process to report its children', () => {
    const text = readFileSync(reportFile, 'utf8')
    if (text !== '') return JSON.parse(text) as Report
    if (child.exitCode !== null) throw new StopWaiting(`it exited first:\n${output}`)
    return undefined
  }, TIMEOUT_MS, 50)
  const started = Object.entries({ ...report.children, watchdog: report.watchdog }).map(([name, pid]) => ({ name, pid, start: liveProcess(pid) }))
  for (const { name, pid, start } of started) t.type(start, 'string', `${name} (pid ${pid}) runs`)
  kill(report.pid)
  await closed
  for (const { name, pid, start } of started) {
    await waitFor(`${name} (pid ${pid}) to be gone`, () => liveProcess(pid) === start ? undefined : true, TIMEOUT_MS, 50)
    t.pass(`${name} is gone`)
  }
  t.same(carriers(report.token), [], 'no process carries its token any more')
  return output
}

for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  t.test(`the test process dies of ${signal}`, async (t) => {
    await dies(t, { args: [...SOURCE_NODE_ARGS, FIXTURE], kill: (pid) => { process.kill(pid, signal) } })
  })
}

t.test('the test process crashes (uncaught exception)', async (t) => {
  const output = await dies(t, { args: [...SOURCE_NODE_ARGS, FIXTURE], kill: (pid) => { process.kill(pid, 'SIGUSR2') } })
  t.match(output, /crashing on purpose/)
})

t.test("tap's per-file timeout (IPC, SIGALRM, SIGKILL) under the repository's tap config", async (t) => {
  // A project of its own (so that this run leaves the outer run's .tap alone), with the
  // repository's node-arg: the preload that starts the watchdog.
  const tapConfig = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { tap: Record<string, unknown> }).tap
  const project = t.testdir({ '.taprc': JSON.stringify({ 'node-arg': tapConfig['node-arg'], 'disable-coverage': true, reporter: 'tap' }) })
  const output = await dies(t, { args: [TAP, FIXTURE], kill: (pid) => { process.kill(pid, 'SIGUSR2') }, cwd: project })
  t.match(output, /timeout/, 'tap timed the file out')
})
