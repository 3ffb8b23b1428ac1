/**
 * GET /metrics: requests by route and status, tokens by grant, password checks by result,
 * sessions ended, published signing keys; nothing secret in the text.
 */
import t from 'tap'
import { basic, postForm, startIssuer } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { passwordTokens, serviceToken } from './fixtures/flows.ts'

t.test('the issuer counts what it does', async (t) => {
  const { as, url } = await startIssuer(t, 'memory')
  const service = await serviceToken(as)
  const tokens = await passwordTokens(as, 'alice', 'openid api:read')
  const wrong = await postForm(`${url}/oauth2/token`, { grant_type: 'password', username: 'alice', password: 'not-her-password' }, { authorization: basic('cli', SECRETS.cli) })
  t.equal(wrong.status, 400)
  const ended = await postForm(`${url}/oauth2/session/end`, { token: tokens.access_token }, { authorization: basic('gateway', SECRETS.gateway) })
  t.equal(ended.status, 200)
  t.equal((await fetch(`${url}/nowhere`)).status, 404)
  t.equal((await fetch(`${url}/%zz`)).status, 400, 'a path Fastify refuses before routing')

  const res = await fetch(`${url}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  t.equal(res.headers.get('cache-control'), 'no-store')
  const text = await res.text()
  t.match(text, 'gatehouse_issuer_requests_total{route="/oauth2/token",status="200"} 2')
  t.match(text, 'gatehouse_issuer_requests_total{route="/oauth2/token",status="400"} 1')
  t.match(text, 'gatehouse_issuer_requests_total{route="/oauth2/session/end",status="200"} 1')
  t.match(text, 'gatehouse_issuer_requests_total{route="(none)",status="404"} 1')
  t.match(text, 'gatehouse_issuer_requests_total{route="(none)",status="400"} 1\n', 'counted once')
  t.match(text, 'gatehouse_issuer_tokens_issued_total{grant_type="client_credentials"} 1')
  t.match(text, 'gatehouse_issuer_tokens_issued_total{grant_type="password"} 1')
  t.match(text, 'gatehouse_issuer_sign_ins_total{result="success"} 1')
  t.match(text, 'gatehouse_issuer_sign_ins_total{result="failure"} 1')
  t.match(text, /^gatehouse_issuer_sessions_ended_total 1$/m)
  t.match(text, /^gatehouse_issuer_signing_keys 1$/m)
  t.match(text, /# TYPE gatehouse_issuer_requests_total counter\n/)
  for (const secret of [service.access_token, tokens.access_token, tokens.refresh_token ?? '', SECRETS.cli, 'not-her-password']) {
    t.notOk(text.includes(secret), 'no token, secret or password in the text')
  }
})

t.test('metrics.path moves the endpoint', async (t) => {
  const { url } = await startIssuer(t, 'memory', 'metrics: { path: /internal/metrics }')
  t.equal((await fetch(`${url}/metrics`)).status, 404)
  const res = await fetch(`${url}/internal/metrics`)
  t.equal(res.status, 200)
  t.match(await res.text(), /^gatehouse_issuer_signing_keys 1$/m)
})
