/**
 * Summarises a V8 .cpuprofile (from `pnpm bench --cpu-prof` or `pnpm bench:gateway --cpu-prof`):
 * top functions by self time, self time by package, and total (inclusive) time of the
 * functions matching a filter.
 *
 *   node --import tsx bench/cpu-profile-summary.ts FILE.cpuprofile [--top 30] [--match REGEX]
 *        [--window SECONDS] [--requests N] [--by-caller]
 *
 * --window: only the samples of the busiest stretch of that many seconds (e.g. one measured
 *   round, leaving out start-up and idle time). --requests: the requests served in that
 *   stretch; every line then also gives µs per request. --by-caller: in the per-package
 *   table, native frames (writev, writeString, ...) count for the package that called them.
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  startTime: number
  samples: number[]
  timeDeltas: number[]
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '30' },
    match: { type: 'string' },
    window: { type: 'string' },
    requests: { type: 'string' },
    'by-caller': { type: 'boolean', default: false }
  }
})
const file = positionals[0]
if (file === undefined) throw new Error('usage: cpu-profile-summary.ts FILE.cpuprofile [--top N] [--match REGEX] [--window SECONDS] [--requests N] [--by-caller]')
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile

const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parentOf = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id)
const isIdle = (id: number | undefined): boolean => id !== undefined && byId.get(id)?.callFrame.functionName === '(idle)'

/** The samples counted: all, or those of the busiest `--window` seconds. */
function sampleRange (): { from: number, to: number } {
  const n = profile.samples.length
  if (values.window === undefined) return { from: 0, to: n }
  const width = Number(values.window) * 1e6
  if (!(width > 0)) throw new Error('--window must be a positive number of seconds')
  const at: number[] = []
  let t = 0
  for (let i = 0; i < n; i++) at.push(t += profile.timeDeltas[i] ?? 0)
  let best = { from: 0, to: 0, busy: -1 }
  let busy = 0
  let from = 0
  for (let to = 0; to < n; to++) {
    if (!isIdle(profile.samples[to])) busy += profile.timeDeltas[to] ?? 0
    while ((at[to] ?? 0) - (at[from] ?? 0) > width) {
      if (!isIdle(profile.samples[from])) busy -= profile.timeDeltas[from] ?? 0
      from++
    }
    if (busy > best.busy) best = { from, to: to + 1, busy }
  }
  return best
}
const range = sampleRange()

/** µs of samples whose top frame is each node. */
const selfTime = new Map<number, number>()
for (let i = range.from; i < range.to; i++) {
  const id = profile.samples[i] ?? -1
  selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
}
const total = [...selfTime.values()].reduce((a, b) => a + b, 0)
const idle = [...selfTime].filter(([id]) => isIdle(id)).reduce((a, [, t]) => a + t, 0)
const busy = total - idle
const requests = values.requests === undefined ? undefined : Number(values.requests)
if (requests !== undefined && !(requests > 0)) throw new Error('--requests must be a positive number')

function where (n: ProfileNode): string {
  const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/.*\/node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?/, '')
  return url === '' ? '' : `${url.replace(/^.*\/(packages|bench)\//, '$1/')}:${n.callFrame.lineNumber + 1}`
}

function packageOf (n: ProfileNode): string {
  const { url, functionName } = n.callFrame
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)'
  if (url.startsWith('node:')) return 'node:' + (url.slice(5).split('/')[0] ?? '')
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg?.[1] !== undefined) return pkg[1]
  const own = /\/(packages\/[^/]+|bench)\//.exec(url)
  return own?.[1] ?? url
}

/** With --by-caller, a native frame's package is that of the nearest frame with a URL above it. */
function callerPackageOf (id: number): string {
  const n = byId.get(id)
  if (n === undefined) return '(unknown)'
  if (n.callFrame.url !== '' || n.callFrame.functionName.startsWith('(')) return packageOf(n)
  for (let cur = parentOf.get(id); cur !== undefined; cur = parentOf.get(cur)) {
    const p = byId.get(cur)
    if (p !== undefined && p.callFrame.url !== '') return `${packageOf(p)} (native)`
  }
  return '(native)'
}

const pct = (us: number): string => `${(100 * us / busy).toFixed(1).padStart(5)}%`
const ms = (us: number): string => `${(us / 1000).toFixed(0).padStart(7)} ms`
const perRequest = (us: number): string => requests === undefined ? '' : ` ${(us / requests).toFixed(2).padStart(7)} µs/req`

const scope = values.window === undefined ? '' : ` in the busiest ${values.window} s`
console.log(`${file}\nsampled ${ms(total)}, idle ${ms(idle)}, busy ${ms(busy)}${scope} (percentages are of busy time)` +
  (requests === undefined ? '' : `; ${requests} requests: ${(busy / requests).toFixed(1)} µs busy per request`) + '\n')

const selfByFunction = new Map<string, number>()
for (const [id, t] of selfTime) {
  const n = byId.get(id)
  if (n === undefined || isIdle(id)) continue
  const key = `${n.callFrame.functionName || '(anonymous)'}  ${where(n)}`
  selfByFunction.set(key, (selfByFunction.get(key) ?? 0) + t)
}
console.log('## top self time')
for (const [key, t] of [...selfByFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`${pct(t)} ${ms(t)}${perRequest(t)}  ${key}`)

const selfByPackage = new Map<string, number>()
for (const [id, t] of selfTime) {
  const n = byId.get(id)
  if (n === undefined || isIdle(id)) continue
  const key = values['by-caller'] ? callerPackageOf(id) : packageOf(n)
  selfByPackage.set(key, (selfByPackage.get(key) ?? 0) + t)
}
console.log(`\n## self time by package${values['by-caller'] ? ' (native frames counted for their caller\'s package)' : ''}`)
for (const [key, t] of [...selfByPackage].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${pct(t)} ${ms(t)}${perRequest(t)}  ${key}`)

if (values.match !== undefined) {
  // Inclusive time: a sample counts once for each matching function on its stack.
  const pattern = new RegExp(values.match)
  const inclusive = new Map<string, number>()
  for (let i = range.from; i < range.to; i++) {
    const seen = new Set<string>()
    for (let cur: number | undefined = profile.samples[i]; cur !== undefined; cur = parentOf.get(cur)) {
      const n = byId.get(cur)
      if (n === undefined) break
      const key = `${n.callFrame.functionName || '(anonymous)'}  ${where(n)}`
      if (!seen.has(key) && pattern.test(key)) {
        seen.add(key)
        inclusive.set(key, (inclusive.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0))
      }
    }
  }
  console.log(`\n## total time of functions matching /${values.match}/`)
  for (const [key, t] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`${pct(t)} ${ms(t)}${perRequest(t)}  ${key}`)
}
