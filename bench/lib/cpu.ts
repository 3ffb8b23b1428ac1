/**
 * How busy the server's CPU was during a run, and how much of that was not the server: other
 * processes on a shared machine make a round slow, and this says so instead of hiding it.
 * Linux only (/proc); both files count in USER_HZ ticks.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** USER_HZ: ticks per second in /proc (100 almost everywhere). */
const TICKS_PER_SECOND = ((): number => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { return 100 }
})()

interface Sample { cpuBusy: number, cpuTotal: number, process: number }

function cpuTicks (cpu: number): { busy: number, total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `))
  if (line === undefined) throw new Error(`cpu${cpu} not in /proc/stat`)
  // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number)
  const busy = user + nice + system + irq + softirq + steal
  return { busy, total: busy + idle + iowait }
}

/**
 * Fields of a /proc/<pid>/stat file after the parenthesised command name (which may hold
 * spaces): index 0 is field 3 (state), so field N is at index N - 3.
 */
function statFields (file: string): string[] {
  const stat = readFileSync(file, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** utime + stime (fields 14 and 15) of every thread of the process. */
function processTicks (pid: number): number {
  const fields = statFields(`/proc/${pid}/stat`)
  return Number(fields[11]) + Number(fields[12])
}

export interface CpuShare {
  /** % of the CPU's time the server used */
  server: number
  /** % of the CPU's time used by anything else (other processes, interrupts, steal) */
  other: number
  /** CPU time the server used, µs */
  serverMicros: number
}

/** Starts measuring; the returned function ends the measurement. */
export function watchCpu (cpu: number, pid: number): () => CpuShare {
  const sample = (): Sample => {
    const { busy, total } = cpuTicks(cpu)
    return { cpuBusy: busy, cpuTotal: total, process: processTicks(pid) }
  }
  const start = sample()
  return () => {
    const end = sample()
    const total = Math.max(1, end.cpuTotal - start.cpuTotal)
    const server = end.process - start.process
    const other = Math.max(0, end.cpuBusy - start.cpuBusy - server)
    return { server: 100 * server / total, other: 100 * other / total, serverMicros: server * 1e6 / TICKS_PER_SECOND }
  }
}

/** Resident set size of a process, MB (VmRSS in /proc/PID/status); NaN once it is gone. */
export function rssMegabytes (pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? NaN : Number(match[1]) / 1024
  } catch {
    return NaN
  }
}

/** CPU ticks of this process's reaped children (cutime + cstime, fields 16 and 17 of /proc/self/stat). */
export function reapedChildrenTicks (): number {
  const fields = statFields('/proc/self/stat')
  return Number(fields[13]) + Number(fields[14])
}

export interface LoadCpuShare {
  /** % of the load CPU's time that was busy */
  busy: number
  /** % used by the load generator (a child of this process, reaped when the run ends) */
  generator: number
  /** % used by the listed bench processes (upstream, Redis, ...) */
  bench: number
  /** % used by anything else: other processes on a shared machine, interrupts */
  other: number
}

/**
 * Starts measuring the load CPU: who used it. Stop it after the generator has exited (so its
 * time is counted in this process's children).
 */
export function watchLoadCpu (cpu: number, benchPids: number[]): () => LoadCpuShare {
  const start = { cpu: cpuTicks(cpu), children: reapedChildrenTicks(), bench: benchPids.map(processTicksOrZero) }
  return () => {
    const end = { cpu: cpuTicks(cpu), children: reapedChildrenTicks(), bench: benchPids.map(processTicksOrZero) }
    const total = Math.max(1, end.cpu.total - start.cpu.total)
    const busy = end.cpu.busy - start.cpu.busy
    const generator = end.children - start.children
    const bench = end.bench.reduce((n, t, i) => n + t - (start.bench[i] ?? 0), 0)
    return { busy: 100 * busy / total, generator: 100 * generator / total, bench: 100 * bench / total, other: 100 * Math.max(0, busy - generator - bench) / total }
  }
}

function processTicksOrZero (pid: number): number {
  try { return processTicks(pid) } catch { return 0 }
}
