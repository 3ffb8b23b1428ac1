/**
 * Every revocation becomes a session-revoked SET, taken by RFC 8936 polling: caused through the
 * issuer's real endpoints (gateway logout, RP-initiated logout, a new sign-in, RFC 7009, refresh
 * token reuse, code replay), each SET verified with jose against the JWKS. Then the poll
 * itself: acknowledgements, redelivery, the long poll, replay for a new stream, a client
 * hanging up, a closing app, and an event log that cannot be written.
 */
import t, { type Test } from 'tap'
import { mkdir, rmdir } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import * as oauth from 'oauth4webapi'
import { decodeJwt } from 'jose'
import { basic, postForm } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { passwordTokens, refresh, waitFor } from './fixtures/flows.ts'
import { signIn, WEB_CALLBACK } from './fixtures/sign-in.ts'
import { drain, receiver, receiverToken, SESSION_REVOKED, startSsfIssuer, verifySet, type VerifiedSet } from './fixtures/ssf.ts'

const { url, app, as } = await startSsfIssuer(t, { extra: 'sharedSignals: { pollWait: 1 }\n' })
const a = receiver(url, await receiverToken(url, 'receiver-a'))
const stream = await a.stream({ description: 'test gateway' })
const cli = { authorization: basic('cli', SECRETS.cli) }
const gateway = { authorization: basic('gateway', SECRETS.gateway) }
const { startAuthorization, loginAndAllow, webLogin } = signIn(as, url)

/** What each SET says, in a form easy to compare. */
const summary = (sets: VerifiedSet[]): Array<{ sub_id: unknown, reason: string, entity: string }> =>
  sets.map((s) => ({ sub_id: s.payload.sub_id, reason: s.event.reason_admin?.en, entity: s.event.initiating_entity }))
const tokenSubject = (token: string): Record<string, string> => ({ format: 'jwt_id', iss: url, jti: String(decodeJwt(token).jti) })
const sessionSubject = (sid: unknown, sub?: string): Record<string, unknown> => ({
  format: 'complex', session: { format: 'opaque', id: sid }, ...(sub === undefined ? {} : { user: { format: 'iss_sub', iss: url, sub } })
})
const oneTxn = (t: Test, sets: VerifiedSet[]): void => {
  t.equal(new Set(sets.map((s) => s.payload.txn)).size, 1, 'the SETs of one cause share a txn')
}

t.test('gateway logout: the session, and every access token of it, one txn', async (t) => {
  await drain(url, a, stream)
  const first = await passwordTokens(as, 'alice', 'api:read')
  const second = await refresh(as, first.refresh_token ?? '')
  const { sid } = decodeJwt(second.access_token)
  const before = Math.floor(Date.now() / 1000)
  const res = await postForm(`${url}/oauth2/session/end`, { token: second.access_token }, gateway)
  t.equal(res.status, 200)
  const sets = await drain(url, a, stream)
  t.same(new Set(summary(sets).map((s) => JSON.stringify(s))), new Set([
    { sub_id: tokenSubject(second.access_token), reason: 'logout', entity: 'user' },
    { sub_id: sessionSubject(sid, 'alice'), reason: 'logout', entity: 'user' },
    { sub_id: tokenSubject(first.access_token), reason: 'logout', entity: 'user' }
  ].map((s) => JSON.stringify(s))), 'each token once, and the session with its user')
  t.equal(sets.length, 3)
  oneTxn(t, sets)
  for (const set of sets) {
    t.equal(set.type, SESSION_REVOKED)
    t.equal(set.header.typ, 'secevent+jwt')
    t.equal(set.header.alg, 'ES256')
    t.ok(set.event.event_timestamp >= before && set.event.event_timestamp <= Math.floor(Date.now() / 1000) + 1, 'event_timestamp in seconds')
    t.equal(set.payload.iat, set.event.event_timestamp)
    t.equal(set.payload.aud, 'receiver-a')
  }
  t.equal(new Set(sets.map((s) => s.payload.jti)).size, 3, 'a jti per event')

  const again = await postForm(`${url}/oauth2/session/end`, { token: second.access_token }, gateway)
  t.equal(again.json.ended, false, 'a second logout: the store no longer knows the session')
  const repeated = summary(await drain(url, a, stream))
  t.ok(repeated.some((s) => JSON.stringify(s.sub_id) === JSON.stringify(sessionSubject(sid, 'alice'))), 'its session-revoked is sent all the same')
})

t.test('RP-initiated logout, and a new sign-in replacing a session', async (t) => {
  await drain(url, a, stream)
  const signedIn = await webLogin()
  const sid = decodeJwt(signedIn.tokens.id_token ?? '').sid
  const logout = new URL(`${url}/oauth2/logout`)
  logout.searchParams.set('id_token_hint', signedIn.tokens.id_token ?? '')
  const page = await signedIn.browser.request(logout.toString())
  t.equal(page.status, 200)
  const sets = await drain(url, a, stream)
  t.same(summary(sets.filter((s) => s.payload.sub_id?.format === 'complex')), [{ sub_id: sessionSubject(sid, 'alice'), reason: 'logout', entity: 'user' }])
  t.same(summary(sets.filter((s) => s.payload.sub_id?.format === 'jwt_id')).map((s) => s.sub_id), [tokenSubject(signedIn.tokens.access_token)], 'and the access token of its refresh token family')
  oneTxn(t, sets)

  const old = await webLogin()
  const oldSid = decodeJwt(old.tokens.id_token ?? '').sid
  await drain(url, a, stream)
  await webLogin({ prompt: 'login' }, old.browser, 'bob')
  const replaced = summary(await drain(url, a, stream))
  t.same(replaced.find((s) => s.sub_id !== undefined && (s.sub_id as { format: string }).format === 'complex'),
    { sub_id: sessionSubject(oldSid, 'alice'), reason: 'session replaced by a new sign-in', entity: 'user' })
})

t.test('RFC 7009 revocation: the access token, or a refresh token\'s family', async (t) => {
  await drain(url, a, stream)
  const tokens = await passwordTokens(as, 'alice', 'api:read')
  t.equal((await postForm(`${url}/oauth2/revoke`, { token: tokens.access_token }, cli)).status, 200)
  const sets = await drain(url, a, stream)
  t.same(summary(sets), [{ sub_id: tokenSubject(tokens.access_token), reason: 'token revoked', entity: 'user' }])

  const family = await passwordTokens(as, 'alice', 'api:read')
  const next = await refresh(as, family.refresh_token ?? '')
  t.equal((await postForm(`${url}/oauth2/revoke`, { token: next.refresh_token ?? '' }, cli)).status, 200)
  t.same(new Set(summary(await drain(url, a, stream)).map((s) => JSON.stringify(s.sub_id))),
    new Set([family.access_token, next.access_token].map((token) => JSON.stringify(tokenSubject(token)))), 'every live access token of the family')
})

t.test('refresh token reuse revokes the family\'s access tokens', async (t) => {
  await drain(url, a, stream)
  const first = await passwordTokens(as, 'alice', 'api:read')
  const second = await refresh(as, first.refresh_token ?? '')
  const reuse = await postForm(`${url}/oauth2/token`, { grant_type: 'refresh_token', refresh_token: first.refresh_token ?? '' }, cli)
  t.equal(reuse.json.error, 'invalid_grant')
  const sets = await drain(url, a, stream)
  t.same(new Set(summary(sets).map((s) => JSON.stringify(s))), new Set([first, second].map((tokens) =>
    JSON.stringify({ sub_id: tokenSubject(tokens.access_token), reason: 'refresh token reuse', entity: 'policy' }))))
  oneTxn(t, sets)
})

t.test('authorization code replay revokes what the code gave', async (t) => {
  await drain(url, a, stream)
  const web: oauth.Client = { client_id: 'web' }
  const started = await startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid api:read' })
  const callback = await loginAndAllow(started)
  const params = oauth.validateAuthResponse(as, web, new URL(callback.url), started.state)
  const code = params.get('code') ?? ''
  const exchange = { grant_type: 'authorization_code', code, redirect_uri: WEB_CALLBACK, code_verifier: started.verifier }
  const webAuth = { authorization: basic('web', SECRETS.web) }
  const first = await postForm(`${url}/oauth2/token`, exchange, webAuth)
  t.equal(first.status, 200)
  const replay = await postForm(`${url}/oauth2/token`, exchange, webAuth)
  t.equal(replay.json.error, 'invalid_grant')
  t.same(summary(await drain(url, a, stream)), [{ sub_id: tokenSubject(String(first.json.access_token)), reason: 'authorization code replay', entity: 'policy' }])
})

t.test('a refresh on a session that has ended says so again', async (t) => {
  const tokens = await passwordTokens(as, 'bob', 'api:read')
  const { sid } = decodeJwt(tokens.access_token)
  // A logout that raced the family's creation: the session ended, the family escaped.
  await app.issuer.stores.sessions.end(String(sid))
  await drain(url, a, stream)
  const res = await postForm(`${url}/oauth2/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token ?? '' }, cli)
  t.equal(res.json.error, 'invalid_grant')
  t.same(new Set(summary(await drain(url, a, stream)).map((s) => JSON.stringify(s))), new Set([
    { sub_id: sessionSubject(sid, 'bob'), reason: 'session ended', entity: 'policy' },
    { sub_id: tokenSubject(tokens.access_token), reason: 'session ended', entity: 'policy' }
  ].map((s) => JSON.stringify(s))))
})

const revokeOne = async (): Promise<string> => {
  const { access_token: token } = await passwordTokens(as, 'alice', 'api:read')
  const res = await postForm(`${url}/oauth2/revoke`, { token }, cli)
  if (res.status !== 200) throw new Error(`revoke: ${res.status}`)
  return String(decodeJwt(token).jti)
}

t.test('acknowledged SETs go away; unacknowledged ones come again; maxEvents and moreAvailable', async (t) => {
  await drain(url, a, stream)
  const jtis = [await revokeOne(), await revokeOne(), await revokeOne()]
  const subjects = async (sets: Record<string, string>): Promise<string[]> =>
    await Promise.all(Object.values(sets).map(async (set) => String((await verifySet(set, url, 'receiver-a')).payload.sub_id?.jti)))
  const first = await a.poll(stream, { returnImmediately: true, maxEvents: 2 })
  t.equal(first.status, 200)
  t.equal(first.headers.get('cache-control'), 'no-store')
  t.same(await subjects(first.json.sets), jtis.slice(0, 2), 'oldest first, at most maxEvents')
  t.equal(first.json.moreAvailable, true)
  const again = await a.poll(stream, { returnImmediately: true, maxEvents: 2 })
  t.same(Object.keys(again.json.sets), Object.keys(first.json.sets), 'not acknowledged: delivered again')
  const [one, two] = Object.keys(first.json.sets)
  const ackOnly = await a.poll(stream, { returnImmediately: true, maxEvents: 0, ack: [two], setErrs: { [one!]: { err: 'invalid_request', description: 'test' } } })
  t.same(ackOnly.json, { sets: {}, moreAvailable: true }, 'maxEvents 0 only acknowledges (an error report counts)')
  const rest = await a.poll(stream, { returnImmediately: true })
  t.same(await subjects(rest.json.sets), [jtis[2]])
  t.equal(rest.json.moreAvailable, false)
})

t.test('a long poll wakes for an event well under a second; with none it answers after pollWait', async (t) => {
  await drain(url, a, stream)
  const held = a.poll(stream, {})
  t.not(await waitFor(() => app.issuer.signals.waitingPolls === 1), -1, 'the poll is held')
  const jti = await revokeOne()
  const revokedAt = Date.now()
  const res = await held
  const took = Date.now() - revokedAt
  t.ok(took < 1000, `answered ${took} ms after the revocation`)
  t.same(await Promise.all(Object.values(res.json.sets as Record<string, string>).map(async (set) => (await verifySet(set, url, 'receiver-a')).payload.sub_id?.jti)), [jti])
  await a.poll(stream, { returnImmediately: true, ack: Object.keys(res.json.sets) })

  const started = Date.now()
  const empty = await a.poll(stream, {})
  const waited = Date.now() - started
  t.same(empty.json, { sets: {}, moreAvailable: false })
  t.ok(waited >= 900 && waited < 15_000, `held ${waited} ms (pollWait 1 s)`)
})

t.test('a new stream starts with every retained event', async (t) => {
  const replay = await drain(url, a, await a.stream())
  const jtis = replay.map((s) => s.payload.sub_id?.jti).filter(Boolean)
  t.ok(replay.length >= 15, `${replay.length} SETs replayed`)
  const mine = await revokeOne()
  t.notOk(jtis.includes(mine), 'a later event was not there yet')
  const fresh = await drain(url, a, await a.stream())
  t.equal(fresh.length, replay.length + 1, 'and comes to the next new stream after the earlier ones')
  t.equal(fresh.at(-1)?.payload.sub_id?.jti, mine)
  for (const s of (await a.get()).json) if (s.stream_id !== stream) await a.remove(s.stream_id)
})

t.test('a client hanging up mid-poll frees its place at once', async (t) => {
  await drain(url, a, stream)
  // node:http, not fetch: undici opens a fresh, never-used connection after an abort, which
  // Node's server.close() does not reap, so the app's close would wait its keep-alive timeout.
  const held = request(`${url}/ssf/poll/${stream}`, { method: 'POST', agent: false, headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/json' } })
  const ended = new Promise((resolve) => held.once('close', resolve))
  held.on('error', () => {})
  held.end('{}')
  t.not(await waitFor(() => app.issuer.signals.waitingPolls === 1), -1, 'held')
  held.destroy()
  await ended
  const freed = await waitFor(() => app.issuer.signals.waitingPolls === 0, 500)
  t.not(freed, -1, `freed after ${freed} ms, not at the end of pollWait`)
})

t.test('an event log that cannot be written fails the revocation with a 503, and a retry succeeds', async (t) => {
  const other = await startSsfIssuer(t)
  const r = receiver(other.url, await receiverToken(other.url))
  const id = await r.stream()
  const { access_token: token } = await passwordTokens(other.as, 'alice', 'api:read')
  // The log's file is opened at the first append: a directory in its place makes it fail.
  const log = join(other.config.dataDir, 'ssf-events.jsonl')
  await mkdir(log)
  t.teardown(async () => { await rmdir(log).catch(() => {}) })
  const revoke = async (): Promise<Awaited<ReturnType<typeof postForm>>> => await postForm(`${other.url}/oauth2/revoke`, { token }, cli)
  const failed = await revoke()
  t.equal(failed.status, 503)
  t.equal(failed.json.error, 'temporarily_unavailable')
  t.equal(failed.headers.get('retry-after'), '1')
  await rmdir(log)
  t.equal((await revoke()).status, 200, 'the retry')
  t.same(summary(await drain(other.url, r, id)).map((s) => s.sub_id), [{ format: 'jwt_id', iss: other.url, jti: String(decodeJwt(token).jti) }], 'the event is there')
})

t.test('closing the app answers held polls at once', async (t) => {
  const other = await startSsfIssuer(t)
  const r = receiver(other.url, await receiverToken(other.url))
  const id = await r.stream()
  await drain(other.url, r, id)
  const held = r.poll(id, {})
  t.not(await waitFor(() => other.app.issuer.signals.waitingPolls === 1), -1)
  const started = Date.now()
  await other.app.close()
  const took = Date.now() - started
  t.ok(took < 5000, `closed in ${took} ms, though pollWait is 25 s`)
  const res = await held
  t.same([res.status, res.json], [200, { sets: {}, moreAvailable: false }])
})
