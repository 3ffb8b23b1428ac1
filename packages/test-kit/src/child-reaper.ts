/**
 * Test harness: no process a test starts outlives the test process, however that dies: a
 * normal exit, a crash, SIGKILL, or tap's per-file timeout (tap 21 sends the file an IPC
 * message, then SIGALRM half a second later, then SIGKILL: async teardowns do not run to the
 * end, and a death by signal skips `process.on('exit')`).
 *
 * Loading this module starts a watchdog `sh` that reads a pipe from this process. The kernel
 * closes the pipe when this process is gone, whatever killed it; the watchdog then SIGKILLs
 * - the processes registered with {@link reapOnExit} (their whole process group when they lead
 *   one), checked by start time so that a reused pid is never hit, and
 * - every process whose environment holds this process's random token: loading this module
 *   puts it in `process.env`, so every process started afterwards inherits it, directly or
 *   through a launcher, a shell or playwright, whatever its process group. Read from
 *   /proc/PID/environ (Linux); a process that rewrites that area for its title (redis-server)
 *   or gets its environment from scratch is covered by registration only.
 * It names each process it killed on stderr, and exits.
 *
 * tap preloads this into every test file (package.json, `node-arg`); the Redis and process
 * harnesses import it too, for scripts run without tap.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'

/** The environment variable that carries this process's token to its descendants. */
export const REAPER_TOKEN_VARIABLE = 'TEST_REAPER_TOKEN'

// $1 is `NAME=TOKEN`, $2 names the test process. Lines `+PID:START` register, `-PID` forget.
// It ignores the signals a terminal or tap sends around: it must outlive the test process.
// The environment scan repeats until nothing is found (one may start another before it dies).
const WATCHDOG = `
trap '' HUP INT QUIT TERM ALRM PIPE USR1 USR2
marker=$1 owner=$2 registered=' '
while read -r line; do
  case $line in
    +*) registered="$registered\${line#+} " ;;
    -*) keep=' '
        for entry in $registered; do [ "\${entry%%:*}" = "\${line#-}" ] || keep="$keep$entry "; done
        registered=$keep ;;
  esac
done
reap () {
  args=$(tr '\\0' ' ' 2>/dev/null < "/proc/$1/cmdline")
  kill -KILL $2 2>/dev/null && echo "child-reaper: $owner left pid $1 running: $args(killed)" >&2
}
for entry in $registered; do
  pid=\${entry%%:*}
  read -r stat 2>/dev/null < "/proc/$pid/stat" || continue
  set -- \${stat##*) }
  pgrp=$3; shift 19
  [ "$1" = "\${entry#*:}" ] || continue
  if [ "$pgrp" = "$pid" ]; then reap "$pid" "-$pid"; else reap "$pid" "$pid"; fi
done
round=0
while [ "$round" -lt 20 ]; do
  files=$(grep -lsxzF -e "$marker" /proc/[0-9]*/environ)
  [ -z "$files" ] && exit 0
  for file in $files; do pid=\${file#/proc/}; pid=\${pid%/environ}; reap "$pid" "$pid"; done
  round=$((round + 1))
  sleep 0.1
done
`

interface Reaper { token: string, pid: number | undefined, send: (line: string) => void }
const LOADED = Symbol.for('gatehouse.childReaper')
const registry = globalThis as { [LOADED]?: Reaper }

/** Starts the watchdog for this process, once. */
function install (): Reaper {
  const existing = registry[LOADED]
  if (existing !== undefined) return existing
  const token = randomBytes(16).toString('hex')
  // The watchdog must not carry the token (nor an inherited one: a parent's watchdog covers
  // this process already).
  const env = { ...process.env }
  delete env[REAPER_TOKEN_VARIABLE]
  process.env[REAPER_TOKEN_VARIABLE] = token
  const owner = `pid ${process.pid} (${process.argv.slice(1).map((arg) => arg.replace(process.cwd() + '/', '')).join(' ')})`
  const watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'child-reaper', `${REAPER_TOKEN_VARIABLE}=${token}`, owner], {
    env,
    // Its own session: a terminal's Ctrl-C or a kill of our process group does not reach it.
    detached: true,
    stdio: ['pipe', 'ignore', 'inherit']
  })
  watchdog.on('error', (err) => { process.emitWarning(`child-reaper: no watchdog (${err.message}); spawned processes may outlive this one`) })
  const pipe = watchdog.stdin
  pipe?.on('error', () => { /* the watchdog is gone: nothing to tell it */ })
  // Neither the watchdog nor the pipe keeps this process alive.
  watchdog.unref()
  ;(pipe as unknown as { unref?: () => void } | null)?.unref?.()
  const reaper: Reaper = { token, pid: watchdog.pid, send: (line) => { if (pipe?.writable === true) pipe.write(line) } }
  registry[LOADED] = reaper
  return reaper
}

const reaper = install()

/** The token every process started by this one carries in {@link REAPER_TOKEN_VARIABLE}. */
export const reaperToken = reaper.token

/** The watchdog's pid (undefined if it could not start). */
export const reaperPid = reaper.pid

/** Field 22 of /proc/PID/stat (start time in clock ticks), or undefined when unknown. */
function startTime (pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // `pid (comm) state ...`: comm may hold spaces and parentheses; fields 3.. follow the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/**
 * Has the watchdog SIGKILL `child` (its process group, when `detached`) if this process dies
 * while the child still runs. For children that lose or never get this process's environment.
 */
export function reapOnExit (child: ChildProcess): void {
  const pid = child.pid
  const start = pid === undefined ? undefined : startTime(pid)
  if (start === undefined) return
  reaper.send(`+${String(pid)}:${start}\n`)
  child.once('exit', () => { reaper.send(`-${String(pid)}\n`) })
}
