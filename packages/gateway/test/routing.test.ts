/**
 * Routing on open routes (auth: none): prefix keep/strip/rewrite, longest prefix on segment
 * boundaries, round robin, upstream base paths, query and body passed through, 404, and the
 * path tricks that must never reach another route.
 */
import t from 'tap'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import { gatewayConfig, rawRequest, startGateway } from './fixtures/gateway.ts'
import { startUpstream, type Echo } from './fixtures/upstream.ts'

/** Nothing listens there: the keys never load (fine for routes without auth). */
const NO_ISSUER = `http://127.0.0.1:${await freePort()}`

t.test('prefix handling and matching', async (t) => {
  const a = await startUpstream(t, 'a')
  const b = await startUpstream(t, 'b')
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { prefix: /keep, upstreams: ['${a.url}'], stripPrefix: false, auth: none }
  - { prefix: /strip, upstreams: ['${a.url}'], auth: none }
  - { prefix: /rewrite, upstreams: ['${a.url}'], rewritePrefix: /v2, auth: none }
  - { prefix: /based, upstreams: ['${a.url}/base/'], auth: none }
  - { prefix: /nested, upstreams: ['${a.url}'], auth: none, stripPrefix: false }
  - { prefix: /nested/deeper, upstreams: ['${b.url}'], auth: none, stripPrefix: false }
  - { prefix: /rr, upstreams: ['${a.url}', '${b.url}'], auth: none }
  - { prefix: /, upstreams: ['${b.url}'], auth: none, stripPrefix: false, name: fallback }
`))
  const get = async (url: string, method: 'GET' | 'POST' = 'GET', payload?: string): Promise<Echo> => {
    const res = await app.inject({ method, url, ...(payload === undefined ? {} : { payload, headers: { 'content-type': 'text/plain' } }) })
    t.equal(res.statusCode, 200, `${method} ${url}: 200`)
    return res.json<Echo>()
  }
  t.match(await get('/keep/x?q=1&r=%20'), { upstream: 'a', path: '/keep/x?q=1&r=%20' }, 'stripPrefix: false keeps the path and the query')
  t.match(await get('/strip/x/y'), { path: '/x/y' }, 'strip')
  t.match(await get('/strip'), { path: '/' }, 'strip to the root')
  t.match(await get('/strip/'), { path: '/' })
  t.match(await get('/rewrite/x'), { path: '/v2/x' }, 'rewrite')
  t.match(await get('/rewrite'), { path: '/v2' })
  t.match(await get('/based/x'), { path: '/base/x' }, 'the upstream\'s base path')
  t.match(await get('/nested/x'), { upstream: 'a' })
  t.match(await get('/nested/deeper/x'), { upstream: 'b' }, 'the longest prefix wins')
  t.match(await get('/nestedx'), { upstream: 'b', path: '/nestedx' }, 'segment boundaries: /nestedx is not under /nested')
  t.match(await get('/keep/x', 'POST', 'hello body'), { method: 'POST', body: 'hello body' }, 'the body is streamed through')
  t.match(await get('/%6beep/x'), { upstream: 'a', path: '/keep/x' }, 'an encoded unreserved character is decoded before matching')

  const turns = []
  for (let i = 0; i < 4; i++) turns.push((await get('/rr/x')).upstream)
  t.same(turns, ['a', 'b', 'a', 'b'], 'round robin')
})

t.test('no route: 404 JSON', async (t) => {
  const a = await startUpstream(t)
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `routes: [{ prefix: /only, upstreams: ['${a.url}'], auth: none }]`))
  const res = await app.inject('/other')
  t.equal(res.statusCode, 404)
  t.match(res.json(), { error: 'not_found' })
  t.ok(res.headers['x-request-id'])
})

t.test('path tricks never reach /api without a token', async (t) => {
  const api = await startUpstream(t, 'api')
  const open = await startUpstream(t, 'public')
  const { url } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { prefix: /api, upstreams: ['${api.url}'], stripPrefix: false }
  - { prefix: /public, upstreams: ['${open.url}'], stripPrefix: false, auth: none }
  - { prefix: /, upstreams: ['${open.url}'], stripPrefix: false, auth: none }
`), { listen: true })
  const tricks = [
    '/public/../api/x', '/public/./../api/x', '/api/%2e%2e/', '/public/%2e%2e/api/x', '/public%2f..%2fapi/x',
    '/public/..%2fapi/x', '/public/%2E%2E%2Fapi', '//api/x', '/public//../api', '/public\\..\\api\\x', '\\api\\x',
    '/public/%5c..%5capi', '/public/%252e%252e/api', '/api%00/x', '/public/%00', '/public/%zz', '/public/%FF',
    '/public/..', '/public/.'
  ]
  for (const target of tricks) {
    const res = await rawRequest(url, target)
    t.equal(res.status, 400, `${target}: 400`)
  }
  t.equal(api.seen.length, 0, 'the /api upstream saw nothing')
  const plain = await rawRequest(url, '/public/x')
  t.equal(plain.status, 200, 'a plain path still works')
  const encoded = await rawRequest(url, '/%61pi/x')
  t.equal(encoded.status, 401, '/%61pi is /api: a token is needed')
  t.equal(api.seen.length, 0)
})
