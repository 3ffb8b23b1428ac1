/**
 * gatehouse-gateway: the only place that reads argv, env and files.
 *
 *   gatehouse-gateway --config FILE           serve
 *   gatehouse-gateway check --config FILE     validate the config, print the route table
 */
import { parseArgs } from 'node:util'
import { ConfigError } from '@gatehouse/shared/config'
import { loadGatewayConfig } from './load-config.ts'
import { serve } from './main.ts'
import { formatRouteTable } from './route-report.ts'

const USAGE = `usage:
  gatehouse-gateway --config FILE
  gatehouse-gateway check --config FILE`

class UsageError extends Error {}

async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } }
  })
  if (values.help === true) { console.log(USAGE); return 0 }
  const [command = 'serve', ...rest] = positionals
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0] ?? ''}"`)
  if (values.config === undefined) throw new UsageError('--config FILE is required')
  switch (command) {
    case 'serve':
      await serve(values.config)
      return -1 // keeps running
    case 'check': {
      const config = loadGatewayConfig(values.config)
      console.log(`${values.config}: ok, ${config.routes.length} route${config.routes.length === 1 ? '' : 's'}`)
      if (config.routes.length > 0) console.log(formatRouteTable(config))
      return 0
    }
    default:
      throw new UsageError(`unknown command "${command}"`)
  }
}

try {
  const code = await run(process.argv.slice(2))
  if (code >= 0) process.exitCode = code
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
  } else if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
    console.error(`${(err as Error).message}\n${USAGE}`)
  } else if (typeof (err as NodeJS.ErrnoException).code === 'string' && (err as NodeJS.ErrnoException).syscall !== undefined) {
    // A system error (address in use, permission denied): one readable line, no stack.
    const e = err as NodeJS.ErrnoException & { address?: string, port?: number }
    console.error(`gatehouse-gateway: ${e.syscall ?? ''} ${e.address ?? ''}${e.port === undefined ? '' : `:${e.port}`} failed: ${e.code ?? ''} (${e.message})`)
  } else {
    console.error(err)
  }
  process.exitCode = 1
  // Anything already opened (Redis connections, timers) must not keep a failed start alive.
  setTimeout(() => process.exit(1), 100).unref()
}
