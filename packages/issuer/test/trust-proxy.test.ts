/**
 * `trustProxy` at the issuer: a list of proxy addresses. Every per-IP key (sign-in and client
 * authentication throttling, the token endpoint's limit for unidentified callers) reads
 * `request.ip`; here it is the address the trusted proxy saw, never an entry a caller made up.
 */
import t from 'tap'
import { ConfigError } from '@gatehouse/shared/config'
import { build } from '../src/app.ts'
import { fixtureConfig } from './fixtures/issuer.ts'

t.test('request.ip behind a listed proxy, with a spoofed X-Forwarded-For chain', async (t) => {
  const config = await fixtureConfig(t.testdir(), 'trustProxy: [127.0.0.1, 10.0.0.0/8]\n')
  const app = await build(config, { logger: false })
  t.teardown(async () => await app.close())
  // What the per-IP keys see, straight from the built app (its trustProxy in force).
  app.get('/test/ip', async (request) => ({ ip: request.ip, protocol: request.protocol }))
  const ipOf = async (xff: string, remoteAddress = '127.0.0.1', proto?: string) => (await app.inject({
    url: '/test/ip',
    remoteAddress,
    headers: { 'x-forwarded-for': xff, ...(proto === undefined ? {} : { 'x-forwarded-proto': proto }) }
  })).json<{ ip: string, protocol: string }>()

  t.equal((await ipOf('6.6.6.6, 203.0.113.7')).ip, '203.0.113.7', 'the left-most, made-up entry is not the client')
  t.equal((await ipOf('6.6.6.6, 203.0.113.7, 10.9.8.7')).ip, '203.0.113.7', 'through two listed proxies')
  t.equal((await ipOf('6.6.6.6, 10.9.8.7')).ip, '6.6.6.6', 'whoever the last listed proxy saw is the client')
  t.equal((await ipOf('203.0.113.7', '192.0.2.1')).ip, '192.0.2.1', 'a peer that is no listed proxy is the client')
  t.equal((await ipOf('203.0.113.7', '::ffff:127.0.0.1')).ip, '203.0.113.7', 'an IPv4-mapped peer matches its IPv4 rule')
  t.equal((await ipOf('203.0.113.7', '127.0.0.1', 'https')).protocol, 'https', 'X-Forwarded-Proto from a listed proxy')
  t.equal((await ipOf('203.0.113.7', '192.0.2.1', 'https')).protocol, 'http', 'not from anyone else')
})

t.test('trustProxy: true, a hop count or a bad entry is a located config error', async (t) => {
  const problems = async (yaml: string): Promise<string> => {
    try {
      await fixtureConfig(t.testdir(), yaml)
    } catch (err) {
      if (err instanceof ConfigError) return err.message
      throw err
    }
    return ''
  }
  t.match(await problems('trustProxy: true\n'), /issuer\.yaml:\d+:13 trustProxy true trusts every X-Forwarded-For entry/)
  t.match(await problems('trustProxy: 2\n'), /issuer\.yaml:\d+:13 trustProxy must be boolean or array/)
  t.match(await problems('trustProxy: [10.0.0.300]\n'), /issuer\.yaml:\d+:14 trustProxy\[0\] "10\.0\.0\.300" is not an IP address/)
  t.equal(await problems('trustProxy: [uniquelocal, 2001:db8::/32]\n'), '')
})
