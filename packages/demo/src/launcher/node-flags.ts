/** Which of the launcher's own `node` flags its services get. */

/** Flags that choose what code runs: export conditions and loaders. */
const PASSED_ON = new Set(['--conditions', '-C', '--import', '--loader', '--experimental-loader'])

/**
 * The services run as the launcher runs: from dist/ under plain `node` (`pnpm start`), or
 * from the sources when a test starts it with `--conditions=gatehouse-source` and a TypeScript
 * loader. Only those flags pass on: `--inspect` and the like would clash between processes.
 */
export function codeFlags (execArgv: readonly string[]): string[] {
  const kept: string[] = []
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i] ?? ''
    const name = arg.split('=', 1)[0] ?? ''
    if (!PASSED_ON.has(name)) continue
    if (arg.includes('=')) {
      kept.push(arg)
    } else if (i + 1 < execArgv.length) {
      kept.push(arg, execArgv[i + 1] ?? '')
      i++
    }
  }
  return kept
}
