/**
 * gatehouse-gateway: the only place that reads argv, env and files.
 *
 *   gatehouse-gateway --config FILE           serve
 *   gatehouse-gateway check --config FILE     validate the config, print the route table
 *   gatehouse-gateway --version               the package's version
 */
import { parseArgs } from 'node:util'
import { packageVersion, runCli, UsageError } from '@gatehouse/shared/cli'
import { loadTls } from '@gatehouse/shared/tls'
import { configWarnings, loadGatewayConfig } from './load-config.ts'
import { serve } from './main.ts'
import { formatRouteTable } from './route-report.ts'

const USAGE = `usage:
  gatehouse-gateway --config FILE
  gatehouse-gateway check --config FILE
  gatehouse-gateway --version`

async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } }
  })
  if (values.help === true) { console.log(USAGE); return 0 }
  if (values.version === true) { console.log(packageVersion(new URL('../package.json', import.meta.url))); return 0 }
  const [command = 'serve', ...rest] = positionals
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0] ?? ''}"`)
  if (values.config === undefined) throw new UsageError('--config FILE is required')
  switch (command) {
    case 'serve':
      await serve(values.config)
      return -1 // keeps running
    case 'check': {
      const config = loadGatewayConfig(values.config)
      loadTls(config.listen.tls, values.config)
      console.log(`${values.config}: ok, ${config.routes.length} route${config.routes.length === 1 ? '' : 's'}`)
      if (config.routes.length > 0) console.log(formatRouteTable(config))
      for (const warning of configWarnings(config)) console.error(`warning: ${warning}`)
      return 0
    }
    default:
      throw new UsageError(`unknown command "${command}"`)
  }
}

await runCli('gatehouse-gateway', USAGE, run)
