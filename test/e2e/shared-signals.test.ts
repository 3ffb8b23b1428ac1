/**
 * Revocations made at the issuer reach gateways that share no Redis with it (issue 11): the
 * issuer is a Shared Signals transmitter, each gateway holds its own poll stream. Real
 * processes, embedded stores everywhere (no Redis at all), two gateways. For each way the
 * issuer revokes (RP-initiated logout, RFC 7009 revocation of an access token, refresh token
 * reuse, authorization code replay), both gateways refuse the affected tokens within the bound,
 * and an unaffected token keeps working. A gateway stopped during a logout refuses the
 * session's token as soon as it is ready again.
 */
import t, { type Test } from 'tap'
import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import * as oauth from 'oauth4webapi'
import { EVENTS_FILE, STREAMS_FILE } from '../../packages/issuer/src/stores/file-signals.ts'
import { bearer, request, startStack, waitFor, type GatewayProcess } from '../fixtures/processes.ts'
import { BROWSER_CLIENTS, CLIENTS, codeFlow, discover, exchangeCode, insecure, isConsentPage, decide, refresh, refusal, signIn, startAuthorization } from '../fixtures/oauth.ts'

const stack = await startStack(t, { gateways: [{}, {}] })
const { issuer } = stack
const gateways = stack.gateways as [GatewayProcess, GatewayProcess]
const as = await discover(issuer)

/** docs/shared-signals.md: p99 under 1 s on this machine; the wait allows a loaded one. */
const BOUND_MS = 5000

const status = async (gateway: GatewayProcess, token: string): Promise<number> =>
  (await request(`${gateway.url}/api/me`, { headers: bearer(token) })).status

async function servedEverywhere (t: Test, token: string, what: string): Promise<void> {
  for (const gateway of gateways) t.equal(await status(gateway, token), 200, `${gateway.name} serves ${what}`)
}

async function refusedEverywhere (t: Test, token: string, what: string): Promise<void> {
  for (const gateway of gateways) {
    await waitFor(`${gateway.name} to refuse ${what}`, async () => await status(gateway, token) === 401 ? true : undefined, BOUND_MS, 5)
    t.pass(`${gateway.name} refuses ${what}`)
  }
}

t.test('the gateways know no Redis: each holds a Shared Signals stream at the issuer', async (t) => {
  t.equal(stack.redis, undefined)
  for (const gateway of gateways) {
    t.equal(gateway.config.redis, undefined)
    const metrics = await gateway.metrics()
    t.match(metrics, new RegExp(`gatehouse_gateway_ssf_staleness_seconds\\{transmitter="${issuer.url.replace(/[/.]/g, '\\$&')}"\\} 0\\b`), `${gateway.name} is in touch with the issuer's transmitter`)
  }
})

t.test('RP-initiated logout at the issuer: both gateways refuse the session\'s tokens', async (t) => {
  const session = await codeFlow(as, 'web', { scope: 'openid api:read' })
  const other = await codeFlow(as, 'web', { scope: 'openid api:read' })
  await servedEverywhere(t, session.access_token, 'the session\'s token')

  const end = new URL(as.end_session_endpoint ?? '')
  end.searchParams.set('id_token_hint', session.id_token ?? '')
  end.searchParams.set('post_logout_redirect_uri', 'http://127.0.0.1:3000/')
  const page = await session.started.browser.request(end.toString())
  t.equal(page.status, 302, 'the issuer ended the session (same browser: no confirmation)')

  await refusedEverywhere(t, session.access_token, 'the logged-out session\'s token')
  await servedEverywhere(t, other.access_token, 'alice\'s other session')
})

t.test('RFC 7009 revocation of an access token at the issuer', async (t) => {
  const session = await codeFlow(as, 'web', { scope: 'openid api:read' })
  const second = await codeFlow(as, 'web', { scope: 'openid api:read' })
  await servedEverywhere(t, session.access_token, 'the token')
  const { client, auth } = CLIENTS.web
  const res = await oauth.revocationRequest(as, client, auth, session.access_token, insecure)
  await oauth.processRevocationResponse(res)
  await refusedEverywhere(t, session.access_token, 'the revoked access token')
  await servedEverywhere(t, second.access_token, 'another token of the same client')
})

t.test('refresh token reuse: whoever refreshed first keeps no working access token', async (t) => {
  const session = await codeFlow(as, 'web', { scope: 'openid offline_access api:read' })
  const stolen = session.refresh_token ?? ''
  // The attacker refreshes first and gets a fresh access token...
  const attacker = await refresh(as, CLIENTS.web, stolen)
  await servedEverywhere(t, attacker.access_token, 'the attacker\'s fresh token')
  // ...then the victim presents the same (now used) refresh token: reuse, the family is revoked.
  t.equal(await refusal(refresh(as, CLIENTS.web, stolen)), 'invalid_grant', 'the reuse is refused')
  await refusedEverywhere(t, attacker.access_token, 'the attacker\'s access token')
  await refusedEverywhere(t, session.access_token, 'the first access token of the grant')
})

t.test('authorization code replay: the tokens of the first exchange are revoked', async (t) => {
  const started = await startAuthorization(as, 'web', { scope: 'openid api:read' })
  let page = await signIn(started)
  if (isConsentPage(page)) page = await decide(started.browser, page, 'allow')
  const tokens = await exchangeCode(as, started, page)
  await servedEverywhere(t, tokens.access_token, 'the first exchange\'s token')
  // The code again (an attacker who saw it): refused, and the first exchange's grant revoked.
  const { client, auth, redirectUri } = BROWSER_CLIENTS.web
  const params = oauth.validateAuthResponse(as, client, new URL(page.url), started.state)
  const replay = await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectUri, started.verifier, insecure)
  t.equal(await refusal(oauth.processAuthorizationCodeResponse(as, client, replay)), 'invalid_grant', 'the replayed code is refused')
  await refusedEverywhere(t, tokens.access_token, 'the token issued for the replayed code')
})

t.test('a gateway stopped during a logout refuses the session\'s token once ready again', async (t) => {
  const [a, b] = gateways
  const session = await codeFlow(as, 'web', { scope: 'openid api:read' })
  await servedEverywhere(t, session.access_token, 'the token')
  await b.stop()
  const end = new URL(as.end_session_endpoint ?? '')
  end.searchParams.set('id_token_hint', session.id_token ?? '')
  end.searchParams.set('post_logout_redirect_uri', 'http://127.0.0.1:3000/')
  t.equal((await session.started.browser.request(end.toString())).status, 302, 'logged out while gateway-b is down')
  await waitFor('gateway-a to refuse the token', async () => await status(a, session.access_token) === 401 ? true : undefined, BOUND_MS, 5)
  await b.start()
  t.equal(await status(b, session.access_token), 401, 'gateway-b refuses it from its first request after /readyz')
})

t.test('the issuer restarted with an empty event log: the gateways forget nothing, and hear what comes next', async (t) => {
  const before = await codeFlow(as, 'web', { scope: 'openid api:read' })
  const after = await codeFlow(as, 'web', { scope: 'openid api:read' })
  await servedEverywhere(t, before.access_token, 'the token to be revoked before the restart')
  const { client, auth } = CLIENTS.web
  await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, auth, before.access_token, insecure))
  await refusedEverywhere(t, before.access_token, 'the token revoked before the restart')

  await issuer.stop()
  for (const file of [EVENTS_FILE, STREAMS_FILE]) {
    t.ok(existsSync(join(issuer.config.dataDir, file)), `${file} was there`)
    rmSync(join(issuer.config.dataDir, file))
  }
  await issuer.start()
  // Each gateway finds its stream gone and makes a new one, which replays nothing.
  for (const gateway of gateways) {
    await waitFor(`${gateway.name} to hold a new stream`, async () => /^gatehouse_gateway_ssf_staleness_seconds\{[^}]*\} 0$/m.test(await gateway.metrics()) ? true : undefined)
  }
  for (const gateway of gateways) t.equal(await status(gateway, before.access_token), 401, `${gateway.name} still refuses the token revoked before the restart (its mirror is the copy)`)
  await servedEverywhere(t, after.access_token, 'a token that was never revoked')

  const end = new URL(as.end_session_endpoint ?? '')
  end.searchParams.set('id_token_hint', after.id_token ?? '')
  end.searchParams.set('post_logout_redirect_uri', 'http://127.0.0.1:3000/')
  t.equal((await after.started.browser.request(end.toString())).status, 302, 'a logout at the restarted issuer')
  await refusedEverywhere(t, after.access_token, 'the session logged out after the restart')
})
