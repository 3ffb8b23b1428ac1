/**
 * Summarises a V8 .cpuprofile (from `pnpm bench --cpu-prof`): top functions by self time,
 * self time by package, and total (inclusive) time of the functions matching a filter.
 *
 *   node --import tsx bench/cpu-profile-summary.ts FILE.cpuprofile [--top 30] [--match REGEX]
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
  samples: number[]
  timeDeltas: number[]
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' }, match: { type: 'string' } }
})
const file = positionals[0]
if (file === undefined) throw new Error('usage: cpu-profile-summary.ts FILE.cpuprofile [--top N] [--match REGEX]')
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile

const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parentOf = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id)

/** µs of samples whose top frame is each node. */
const selfTime = new Map<number, number>()
profile.samples.forEach((id, i) => selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
const total = [...selfTime.values()].reduce((a, b) => a + b, 0)
const idle = [...selfTime].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, t]) => a + t, 0)
const busy = total - idle

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

const pct = (us: number): string => `${(100 * us / busy).toFixed(1).padStart(5)}%`
const ms = (us: number): string => `${(us / 1000).toFixed(0).padStart(7)} ms`

console.log(`${file}\nsampled ${ms(total)}, idle ${ms(idle)}, busy ${ms(busy)} (percentages are of busy time)\n`)

const selfByFunction = new Map<string, number>()
for (const [id, t] of selfTime) {
  const n = byId.get(id)
  if (n === undefined || n.callFrame.functionName === '(idle)') continue
  const key = `${n.callFrame.functionName || '(anonymous)'}  ${where(n)}`
  selfByFunction.set(key, (selfByFunction.get(key) ?? 0) + t)
}
console.log('## top self time')
for (const [key, t] of [...selfByFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`${pct(t)} ${ms(t)}  ${key}`)

const selfByPackage = new Map<string, number>()
for (const [id, t] of selfTime) {
  const n = byId.get(id)
  if (n === undefined || n.callFrame.functionName === '(idle)') continue
  const key = packageOf(n)
  selfByPackage.set(key, (selfByPackage.get(key) ?? 0) + t)
}
console.log('\n## self time by package')
for (const [key, t] of [...selfByPackage].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${pct(t)} ${ms(t)}  ${key}`)

if (values.match !== undefined) {
  // Inclusive time: a sample counts once for each matching function on its stack.
  const pattern = new RegExp(values.match)
  const inclusive = new Map<string, number>()
  profile.samples.forEach((id, i) => {
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parentOf.get(cur)) {
      const n = byId.get(cur)
      if (n === undefined) break
      const key = `${n.callFrame.functionName || '(anonymous)'}  ${where(n)}`
      if (!seen.has(key) && pattern.test(key)) {
        seen.add(key)
        inclusive.set(key, (inclusive.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0))
      }
    }
  })
  console.log(`\n## total time of functions matching /${values.match}/`)
  for (const [key, t] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`${pct(t)} ${ms(t)}  ${key}`)
}
