/**
 * gatehouse-issuer: the only place that reads argv, env and files.
 *
 *   gatehouse-issuer --config FILE            serve
 *   gatehouse-issuer check --config FILE      validate the config and exit
 *   gatehouse-issuer keys rotate [--now --revoke-previous] --config FILE
 *   gatehouse-issuer keys list --config FILE
 *   gatehouse-issuer hash-password            scrypt hash of a password read from stdin
 *   gatehouse-issuer hash-secret              a new client secret and its hash (or hash stdin)
 *   gatehouse-issuer --version                the package's version
 */
import { parseArgs } from 'node:util'
import { text } from 'node:stream/consumers'
import { packageVersion, runCli, UsageError } from '@gatehouse/shared/cli'
import { loadTls } from '@gatehouse/shared/tls'
import { loadIssuerConfig } from './load-config.ts'
import { generateClientSecret, hashClientSecret, hashPassword } from './secrets.ts'
import { serve, withKeyManager } from './main.ts'
import { keyWarnings } from './keys/key-manager.ts'

const USAGE = `usage:
  gatehouse-issuer --config FILE
  gatehouse-issuer check --config FILE
  gatehouse-issuer keys rotate|list --config FILE
  gatehouse-issuer keys rotate --now --revoke-previous --config FILE
                                            (a key leaked: sign with a new key now, revoke every other)
  gatehouse-issuer hash-password            (password on stdin)
  gatehouse-issuer hash-secret [--stdin]    (new secret, or the secret on stdin)
  gatehouse-issuer --version`

async function readStdin (): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('type it, then Ctrl-D: ')
  return (await text(process.stdin)).replace(/\r?\n$/, '')
}

async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, stdin: { type: 'boolean' }, now: { type: 'boolean' }, 'revoke-previous': { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } }
  })
  const [command = 'serve', sub] = positionals
  if (values.help === true) { console.log(USAGE); return 0 }
  if (values.version === true) { console.log(packageVersion(new URL('../package.json', import.meta.url))); return 0 }
  const needConfig = (): string => {
    if (values.config === undefined) throw new UsageError('--config FILE is required')
    return values.config
  }
  switch (command) {
    case 'serve':
      await serve(needConfig())
      return -1 // keeps running
    case 'check': {
      const config = loadIssuerConfig(needConfig())
      loadTls(config.listen.tls, needConfig())
      console.log(`${values.config}: ok`)
      for (const warning of keyWarnings(config)) console.error(`warning: ${warning}`)
      return 0
    }
    case 'keys': {
      if (sub !== 'rotate' && sub !== 'list') throw new UsageError('keys rotate|list')
      const now = values.now === true
      const revokePrevious = values['revoke-previous'] === true
      if (sub !== 'rotate' && (now || revokePrevious)) throw new UsageError('--now and --revoke-previous go with keys rotate')
      if (revokePrevious && !now) throw new UsageError('--revoke-previous needs --now: a key must sign from now on')
      await withKeyManager(needConfig(), async (keys) => {
        if (sub === 'rotate') {
          const key = await keys.rotate({ now, revokePrevious })
          console.log(`published ${key.kid} (${key.alg}); signs from ${new Date(key.activatesAt).toISOString()}`)
          if (revokePrevious) console.log('revoked every other key: tokens they signed are refused from now on (sign-ins and refreshes issue new ones)')
        }
        for (const k of keys.describe()) {
          console.log(`${k.kid}\t${k.alg}\tcreated ${new Date(k.createdAt).toISOString()}\tsigns from ${new Date(k.activatesAt).toISOString()}${k.revokedAt === undefined ? '' : `\tREVOKED ${new Date(k.revokedAt).toISOString()}`}`)
        }
      })
      return 0
    }
    case 'hash-password': {
      const password = await readStdin()
      if (password === '') throw new UsageError('empty password')
      console.log(await hashPassword(password))
      return 0
    }
    case 'hash-secret': {
      const secret = values.stdin === true ? await readStdin() : generateClientSecret()
      if (values.stdin !== true) console.log(`secret:     ${secret}`)
      console.log(`secretHash: ${hashClientSecret(secret)}`)
      return 0
    }
    default:
      throw new UsageError(`unknown command "${command}"`)
  }
}

await runCli('gatehouse-issuer', USAGE, run)
