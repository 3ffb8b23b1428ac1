/**
 * The admin listener (issue 13.1), in real processes: with `admin.listen` set, `/metrics`,
 * `/healthz` and `/readyz` are served on the admin port only, and the public port serves none
 * of them: the issuer answers 404 there, and a gateway route with `prefix: /` reaches its
 * upstream's own `/healthz` and `/metrics`. Without it (every other test), they stay public.
 */
import t from 'tap'
import { startStack, uniquePort, type GatewayProcess } from './fixtures/processes.ts'

const issuerAdmin = await uniquePort()
const gatewayAdmin = await uniquePort()
const stack = await startStack(t, {
  issuer: { configure: (config) => { config.admin = { listen: { host: '127.0.0.1', port: issuerAdmin } } } },
  gateways: [{
    configure: (config) => {
      config.admin = { listen: { host: '127.0.0.1', port: gatewayAdmin } }
      // Everything else goes to the resource server, its own /healthz and /metrics included.
      const upstreams = config.routes[0]?.upstreams ?? []
      config.routes.push({ name: 'everything', prefix: '/', upstreams, auth: 'none', stripPrefix: false, validation: 'local', timeout: 30 })
    }
  }]
})
const { issuer } = stack
const gateway = stack.gateways[0] as GatewayProcess

const get = async (url: string): Promise<{ status: number, text: string, type: string }> => {
  const res = await fetch(url)
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') ?? '' }
}

t.test('the issuer: probes and metrics on the admin port only', async (t) => {
  const admin = `http://127.0.0.1:${issuerAdmin}`
  t.equal((await get(`${admin}/healthz`)).status, 200)
  t.match(await get(`${admin}/readyz`), { status: 200, text: /"ready"/ })
  const metrics = await get(`${admin}/metrics`)
  t.equal(metrics.status, 200)
  t.match(metrics.text, /^gatehouse_issuer_/m, 'the issuer\'s metrics')
  for (const path of ['/healthz', '/readyz', '/metrics']) t.equal((await get(`${issuer.url}${path}`)).status, 404, `public ${path}: 404`)
  t.equal((await get(`${issuer.url}/.well-known/openid-configuration`)).status, 200, 'the public port serves the rest')
  t.equal((await get(`${admin}/.well-known/openid-configuration`)).status, 404, 'and the admin port nothing else')
})

t.test('the gateway: probes and metrics on the admin port; a / route reaches the upstream\'s own', async (t) => {
  const admin = `http://127.0.0.1:${gatewayAdmin}`
  t.equal((await get(`${admin}/healthz`)).status, 200)
  t.match(await get(`${admin}/readyz`), { status: 200, text: /"ready"/ })
  t.match((await get(`${admin}/metrics`)).text, /^gatehouse_gateway_/m, 'the gateway\'s metrics')
  const publicHealth = await get(`${gateway.url}/healthz`)
  t.equal(publicHealth.status, 200)
  t.match(publicHealth.text, /"path":"\/healthz"/, 'public /healthz: the resource server\'s (its echo), not the gateway\'s')
  const publicMetrics = await get(`${gateway.url}/metrics`)
  t.notMatch(publicMetrics.text, /gatehouse_gateway_/, 'public /metrics: not the gateway\'s counts')
  t.match(publicMetrics.text, /"path":"\/metrics"/, 'but the upstream\'s answer')
})
