/**
 * The workspace's build (`pnpm run build`: `tsc -b`, into each package's dist/) for the tests
 * that need what users get: the images' deploys (they ship dist/), `pnpm start` from dist/.
 * No other test needs it (they run the sources). Incremental: a second run takes about a
 * second. One build at a time across test processes (tap runs files in parallel): a lock
 * directory naming the builder's pid; a dead builder's lock is taken over.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'

const LOCK_TIMEOUT_MS = 300_000

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Takes `lock` (a directory); returns its release. */
async function acquire (lock: string): Promise<() => void> {
  const deadline = Date.now() + LOCK_TIMEOUT_MS
  for (;;) {
    try {
      mkdirSync(lock)
      writeFileSync(join(lock, 'pid'), String(process.pid))
      return () => { rmSync(lock, { recursive: true, force: true }) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    let owner = NaN
    try { owner = Number(readFileSync(join(lock, 'pid'), 'utf8')) } catch { /* not written yet */ }
    if (Number.isInteger(owner) && !isAlive(owner)) rmSync(lock, { recursive: true, force: true })
    else if (Date.now() > deadline) throw new Error(`${lock}: held by pid ${owner} for ${LOCK_TIMEOUT_MS} ms`)
    else await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Runs `root`'s `build` script (package.json) with its node_modules/.bin on PATH; throws with the output unless it exits 0. */
export async function buildWorkspace (root: string): Promise<void> {
  const script = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.build
  if (script === undefined) throw new Error(`${root}/package.json has no build script`)
  mkdirSync(join(root, 'node_modules/.cache'), { recursive: true })
  const release = await acquire(join(root, 'node_modules/.cache/gatehouse-build.lock'))
  try {
    const child = spawn('sh', ['-c', script], {
      cwd: root,
      env: { ...process.env, PATH: `${join(root, 'node_modules/.bin')}${delimiter}${process.env.PATH ?? ''}` },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
    const [code] = await once(child, 'close') as [number | null]
    if (code !== 0) throw new Error(`${script} failed (exit ${String(code)}):\n${output}`)
  } finally {
    release()
  }
}
