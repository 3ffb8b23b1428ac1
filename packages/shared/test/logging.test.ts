import t from 'tap'
import { loggerOptions, redactUrl, requestIdentity } from '../src/logging.ts'

t.test('redactUrl masks every secret-bearing query value, and only those', async (t) => {
  t.equal(redactUrl('/oauth2/token'), '/oauth2/token')
  t.equal(redactUrl('/cb?code=abc&state=xyz'), '/cb?code=***&state=xyz')
  t.equal(redactUrl('/x?code_verifier=v&client_secret=s&password=p&id_token_hint=h&logout_token=l&refresh_token=r&access_token=a&token=t&assertion=j'),
    '/x?code_verifier=***&client_secret=***&password=***&id_token_hint=***&logout_token=***&refresh_token=***&access_token=***&token=***&assertion=***')
  t.equal(redactUrl('/x?scope=openid&client_id=web#frag'), '/x?scope=openid&client_id=web#frag')
})

t.test('redactUrl compares names once decoded: every secret parameter, sent encoded, is masked', async (t) => {
  const names = ['code', 'id_token_hint', 'access_token', 'refresh_token', 'token', 'client_secret', 'password', 'logout_token', 'id_token', 'code_verifier']
  const encodeAll = (name: string): string => [...name].map((c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')).join('')
  for (const name of names) {
    for (const spelt of [name.replace(/_/g, '%5F'), encodeAll(name), encodeAll(name).toLowerCase(), name.toUpperCase(), `${name}%5B%5D`]) {
      t.equal(redactUrl(`/x?state=s&${spelt}=SECRET-VALUE&scope=openid`), `/x?state=s&${spelt}=***&scope=openid`, spelt)
    }
  }
  t.equal(redactUrl('/x?id%5Ftoken%ZZ=SECRET'), '/x?id%5Ftoken%ZZ=***', 'a name that does not decode is masked')
  t.equal(redactUrl('/x?tokens=kept&state=token'), '/x?tokens=kept&state=token', 'only whole names, never values')
})

t.test('request ids: a trusted proxy\'s sane one is kept, anyone else\'s replaced', async (t) => {
  const raw = (id: unknown, peer: string): never => ({ headers: { 'x-request-id': id }, socket: { remoteAddress: peer } }) as never
  const behindProxy = requestIdentity((address) => address === '10.0.0.5').genReqId as (raw: never) => string
  t.equal(behindProxy(raw('abc-123.x:y', '10.0.0.5')), 'abc-123.x:y', 'from the proxy: kept')
  t.match(behindProxy(raw('abc-123.x:y', '203.0.113.9')), /^[0-9a-f-]{36}$/, 'from a client: replaced (it could forge a trail)')
  t.match(behindProxy(raw('<script>', '10.0.0.5')), /^[0-9a-f-]{36}$/, 'not sane: replaced')
  t.match(behindProxy(raw('x'.repeat(129), '10.0.0.5')), /^[0-9a-f-]{36}$/)
  t.match(behindProxy(raw(undefined, '10.0.0.5')), /^[0-9a-f-]{36}$/)
  const noProxy = requestIdentity(false).genReqId as (raw: never) => string
  t.match(noProxy(raw('abc', '127.0.0.1')), /^[0-9a-f-]{36}$/, 'without trusted proxies: always a new one')
})

t.test('every request\'s logger carries the client IP: the peer, or behind a trusted proxy the client it names', async (t) => {
  const childBindings = (trust: Parameters<typeof requestIdentity>[0], peer: string, forwardedFor?: string): Record<string, unknown> => {
    let bound: Record<string, unknown> = {}
    // The parent writes a plain-object line with the request's bindings in front (request-logger.ts).
    const logger = { info: (line: Record<string, unknown>) => { bound = line } }
    const factory = requestIdentity(trust).childLoggerFactory as unknown as (l: unknown, b: object, o: object, raw: unknown) => { info: (line: object) => void }
    factory(logger, { reqId: 'r1' }, {}, { headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor }, socket: { remoteAddress: peer }, connection: { remoteAddress: peer } }).info({})
    return bound
  }
  t.same(childBindings(false, '203.0.113.9', '6.6.6.6'), { reqId: 'r1', ip: '203.0.113.9' }, 'no trusted proxy: the peer, whatever X-Forwarded-For says')
  const proxy = (address: string): boolean => address === '10.0.0.5'
  t.same(childBindings(proxy, '10.0.0.5', '6.6.6.6, 198.51.100.7'), { reqId: 'r1', ip: '198.51.100.7' }, 'from the proxy: the right-most entry that is not a proxy')
  t.same(childBindings(proxy, '203.0.113.9', '6.6.6.6'), { reqId: 'r1', ip: '203.0.113.9' }, 'from anyone else: the peer')
})

t.test('loggerOptions redacts credentials and serializes only safe request fields', async (t) => {
  const options = loggerOptions('info') as { level: string, redact: { paths: string[] }, serializers: { req: (r: object) => object } }
  t.equal(options.level, 'info')
  t.ok(options.redact.paths.includes('req.headers.authorization'))
  t.same(options.serializers.req({ id: '1', method: 'GET', url: '/x?password=p', headers: { cookie: 'c' } }), { id: '1', method: 'GET', url: '/x?password=***' })
})
