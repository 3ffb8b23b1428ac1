/**
 * `trustProxy` as a list of proxy addresses: a caller behind a trusted proxy is counted by the
 * address that proxy saw, whatever it writes left of it in X-Forwarded-For; a caller that is
 * not a listed proxy is counted by its own address. `true` is a located config error.
 */
import t from 'tap'
import { ConfigError } from '@gatehouse/shared/config'
import { gatewayConfig, startGateway } from './fixtures/gateway.ts'
import { startTestIssuer } from './fixtures/issuer.ts'
import { startUpstream, type Echo } from './fixtures/upstream.ts'

const issuer = await startTestIssuer(t)
const upstream = await startUpstream(t)
const routes = `
routes:
  - { prefix: /open, upstreams: ['${upstream.url}'], auth: none, rateLimit: { max: 2, window: 60, key: ip } }
`
// app.inject's peer is 127.0.0.1 unless told otherwise: the "proxy" in front.
const { app } = await startGateway(t, gatewayConfig(issuer.url, `trustProxy: [127.0.0.1, 10.0.0.0/8]\n${routes}`))

let spoof = 0
/** A request through the proxy at 127.0.0.1 (and maybe more proxies), with a fresh made-up entry on the left each time. */
const viaProxy = async (chain: string, remoteAddress = '127.0.0.1') =>
  await app.inject({ url: '/open/x', remoteAddress, headers: { 'x-forwarded-for': `198.51.100.${++spoof % 250}, ${chain}` } })

t.test('a spoofed left-most entry does not buy a fresh rate limit', async (t) => {
  const first = await viaProxy('203.0.113.7')
  t.equal(first.statusCode, 200)
  t.equal(first.json<Echo>().headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1', 'the upstream gets the chain from the real client on')
  t.equal((await viaProxy('203.0.113.7')).statusCode, 200)
  t.equal((await viaProxy('203.0.113.7')).statusCode, 429, 'the third request of 203.0.113.7, whatever it made up')
  t.equal((await viaProxy('203.0.113.7, 10.1.2.3')).statusCode, 429, 'through a second listed proxy: still 203.0.113.7')
  t.equal((await viaProxy('203.0.113.8')).statusCode, 200, 'another client behind the proxy has its own count')
})

t.test('a peer that is not a listed proxy is the client, its X-Forwarded-For ignored', async (t) => {
  const direct = async () => await viaProxy('203.0.113.9', '192.0.2.1')
  const first = await direct()
  t.equal(first.statusCode, 200)
  t.equal(first.json<Echo>().headers['x-forwarded-for'], '192.0.2.1')
  t.equal((await direct()).statusCode, 200)
  t.equal((await direct()).statusCode, 429, 'counted as 192.0.2.1')
  t.equal((await viaProxy('203.0.113.9')).statusCode, 200, '203.0.113.9 was never charged')
})

t.test('trustProxy: true and bad entries are located config errors', async (t) => {
  const problems = (yaml: string): string => {
    try {
      gatewayConfig(issuer.url, yaml)
    } catch (err) {
      if (err instanceof ConfigError) return err.message
      throw err
    }
    return ''
  }
  t.match(problems('trustProxy: true\n'), /gateway\.yaml:4:13 trustProxy true trusts every X-Forwarded-For entry.*list the proxies/)
  t.match(problems('trustProxy: 1\n'), /gateway\.yaml:4:13 trustProxy must be boolean or array/)
  const bad = problems('trustProxy: [10.0.0.0/33, proxy.local, loopback, ::1/128]\n')
  t.match(bad, /gateway\.yaml:4:14 trustProxy\[0\] "10\.0\.0\.0\/33": the prefix length must be 0 to 32/)
  t.match(bad, /gateway\.yaml:4:27 trustProxy\[1\] "proxy\.local" is not an IP address/)
  t.equal(bad.split('\n').length, 2, 'loopback and ::1/128 are fine')
})
