// Lists the processes a CI run left running, one `pid command line` per line:
// - those whose environment holds CI_RUN_TOKEN=TOKEN (.ci/run gives it to the test line, and
//   every process started under it inherits it), and
// - those whose environment area was overwritten (redis-server and Chromium's helpers write
//   their title over it, so the token cannot be read), that run in this clone (cwd under ROOT)
//   and started after .ci/run (pid RUN_PID) did. Other processes in the clone are left alone.
// Not this process, its ancestors, nor zombies. Linux (/proc).
//
//   node .ci/leftovers.mjs TOKEN RUN_PID ROOT
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { sep } from 'node:path'

const [token, runPid, root] = process.argv.slice(2)
if (token === undefined || runPid === undefined || root === undefined) {
  console.error('usage: node .ci/leftovers.mjs TOKEN RUN_PID ROOT')
  process.exit(2)
}
const marker = `CI_RUN_TOKEN=${token}`

/** state, ppid and start time (clock ticks after boot) from /proc/PID/stat; undefined when gone. */
function stat (pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return { state: fields[0], ppid: Number(fields[1]), start: Number(fields[19]) }
  } catch {
    return undefined
  }
}

function read (path) {
  try { return readFileSync(path, 'utf8') } catch { return '' }
}

const ancestors = new Set()
for (let pid = process.pid; pid > 1 && !ancestors.has(pid); pid = stat(pid)?.ppid ?? 0) ancestors.add(pid)
const runStart = stat(runPid)?.start ?? Infinity

for (const name of readdirSync('/proc')) {
  if (!/^\d+$/.test(name)) continue
  const pid = Number(name)
  const info = stat(pid)
  if (info === undefined || info.state === 'Z' || ancestors.has(pid)) continue
  const env = read(`/proc/${pid}/environ`).split('\0')
  let isOurs = env.includes(marker)
  if (!isOurs && info.start > runStart && !env.some((entry) => /^[A-Za-z_]\w*=/.test(entry))) {
    let cwd = ''
    try { cwd = readlinkSync(`/proc/${pid}/cwd`).replace(/ \(deleted\)$/, '') } catch { /* gone, or not ours to read */ }
    isOurs = cwd === root || cwd.startsWith(root + sep)
  }
  if (isOurs) console.log(`${pid} ${read(`/proc/${pid}/cmdline`).split('\0').join(' ').trim()}`)
}
