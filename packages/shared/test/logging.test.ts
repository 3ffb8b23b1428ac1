import t from 'tap'
import { loggerOptions, redactUrl, requestId } from '../src/logging.ts'

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

t.test('requestId reuses a sane incoming id, else makes one', async (t) => {
  const of = (id: unknown): string => requestId({ headers: { 'x-request-id': id } } as never)
  t.equal(of('abc-123.x:y'), 'abc-123.x:y')
  t.match(of('<script>'), /^[0-9a-f-]{36}$/)
  t.match(of('x'.repeat(129)), /^[0-9a-f-]{36}$/)
  t.match(of(undefined), /^[0-9a-f-]{36}$/)
})

t.test('loggerOptions redacts credentials and serializes only safe request fields', async (t) => {
  const options = loggerOptions('info') as { level: string, redact: { paths: string[] }, serializers: { req: (r: object) => object } }
  t.equal(options.level, 'info')
  t.ok(options.redact.paths.includes('req.headers.authorization'))
  t.same(options.serializers.req({ id: '1', method: 'GET', url: '/x?password=p', headers: { cookie: 'c' } }), { id: '1', method: 'GET', url: '/x?password=***' })
})
