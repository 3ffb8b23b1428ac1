/** How the CLIs (gatehouse-issuer, gatehouse-gateway) report a failure: one readable line, exit 1. */
import { readFileSync } from 'node:fs'
import { ConfigError } from './config-error.ts'
import { UnusableStoreError } from './store-error.ts'

/** Wrong words on the command line: the message and the usage are printed. */
export class UsageError extends Error {}

/**
 * Prints `err` for a person and ends the process with 1: a config's problems as they are, a
 * usage error with the usage, a store that cannot be used (Redis unreachable, a corrupt keys
 * file) or a system error (address in use, permission denied) as one line without a stack;
 * anything else in full.
 *
 * Both services share one start policy (docs/operations.md, At start): what they cannot run
 * without (the config, the store) must be usable at start, else one line and exit 1, and the
 * supervisor restarts them; a peer that may come later (the gateway's issuer) is waited for
 * with /readyz at 503, as is any outage once running.
 */
export function reportCliError (program: string, err: unknown, usage: string): void {
  const code = (err as { code?: unknown }).code
  if (err instanceof ConfigError) {
    console.error(err.message)
  } else if (err instanceof UnusableStoreError) {
    console.error(`${program}: ${err.message}`)
  } else if (err instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
    console.error(`${(err as Error).message}\n${usage}`)
  } else if (typeof code === 'string' && (err as NodeJS.ErrnoException).syscall !== undefined) {
    const e = err as NodeJS.ErrnoException & { address?: string, port?: number }
    console.error(`${program}: ${e.syscall ?? ''} ${e.address ?? ''}${e.port === undefined ? '' : `:${e.port}`} failed: ${code} (${e.message})`)
  } else {
    console.error(err)
  }
  process.exitCode = 1
  // Anything already opened (Redis connections, timers) must not keep a failed start alive.
  setTimeout(() => process.exit(1), 100).unref()
}

/**
 * `version` of the package.json at `url`, read when asked (not bundled at build time): a CLI
 * passes `new URL('../package.json', import.meta.url)`, the same path from `src/` and `dist/`.
 */
export function packageVersion (url: URL): string {
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version
}

/**
 * Runs a CLI's `run(argv)`: a code >= 0 is the exit code, a negative one means "keep running"
 * (a server); a failure is reported by {@link reportCliError}.
 */
export async function runCli (program: string, usage: string, run: (argv: string[]) => Promise<number>): Promise<void> {
  try {
    const code = await run(process.argv.slice(2))
    if (code >= 0) process.exitCode = code
  } catch (err) {
    reportCliError(program, err, usage)
  }
}
