/**
 * The Shared Signals endpoints over real HTTP: the transmitter metadata, who may call
 * (RFC 6750 errors), stream management and its validation (400 JSON, never a 500), status and
 * verification.
 */
import t from 'tap'
import { build } from '../src/app.ts'
import { call, KEYS_CHANGED, receiver, receiverToken, SESSION_REVOKED, ssfConfig, startSsfIssuer, STREAM_UPDATED, drain, VERIFICATION } from './fixtures/ssf.ts'
import { basic, postForm } from './fixtures/harness.ts'
import { passwordTokens } from './fixtures/flows.ts'
import { SECRETS } from './fixtures/issuer.ts'

const issuer = await startSsfIssuer(t, { extra: 'sharedSignals: { maxStreamsPerClient: 3 }\n' })
const { url, app, as } = issuer
const a = receiver(url, await receiverToken(url, 'receiver-a'))
const b = receiver(url, await receiverToken(url, 'receiver-b'))

t.test('transmitter metadata (SSF 1.0 6.1), also at the issuer path variant (6.2)', async (t) => {
  const res = await call(url, 'GET', '/.well-known/ssf-configuration', undefined)
  t.equal(res.status, 200)
  t.same(res.json, {
    spec_version: '1_0',
    issuer: url,
    jwks_uri: `${url}/.well-known/jwks.json`,
    delivery_methods_supported: ['urn:ietf:rfc:8936', 'urn:ietf:rfc:8935'],
    configuration_endpoint: `${url}/ssf/streams`,
    status_endpoint: `${url}/ssf/status`,
    verification_endpoint: `${url}/ssf/verify`,
    authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
    default_subjects: 'ALL'
  })
  t.ok(as.scopes_supported?.includes('ssf.manage') === true && as.scopes_supported.includes('ssf.read'), 'the built-in scopes are advertised')

  const config = await ssfConfig(t.testdir())
  const withPath = await build({ ...config, issuer: `${config.issuer}/tenant-1` }, { logger: false })
  t.teardown(async () => await withPath.close())
  const metadata = await withPath.inject({ method: 'GET', url: '/.well-known/ssf-configuration/tenant-1' })
  t.equal(metadata.statusCode, 200)
  t.equal(metadata.json().issuer, `${config.issuer}/tenant-1`)
  t.equal(metadata.json().configuration_endpoint, `${config.issuer}/tenant-1/ssf/streams`)
})

t.test('who may call', async (t) => {
  const challenge = (res: { headers: Headers }): string => res.headers.get('www-authenticate') ?? ''
  const none = await call(url, 'GET', '/ssf/streams', undefined)
  t.equal(none.status, 401, 'no token')
  t.match(challenge(none), /^Bearer error="invalid_token"/)
  t.equal(none.json.error, 'invalid_token')
  t.equal((await call(url, 'GET', '/ssf/streams', 'not-a-token')).status, 401, 'garbage')
  t.equal((await call(url, 'GET', `/ssf/streams?access_token=${a.token}`, undefined)).status, 401, 'never from the query (CAEP interop 2.7.3)')

  const service = await postForm(`${url}/oauth2/token`, { grant_type: 'client_credentials', scope: 'api:read' }, { authorization: basic('service', SECRETS.service) })
  t.equal((await call(url, 'GET', '/ssf/streams', String(service.json.access_token))).status, 401, 'a token for another audience (demo-api)')
  const mint = async (clientId: string, audience: string, scope = ['ssf.manage']): Promise<string> =>
    (await app.issuer.tokens.mintAccessToken({ clientId, subject: clientId, scope, audience: [audience], ttl: 60 })).token
  const wrongScope = await call(url, 'GET', '/ssf/streams', await mint('receiver-a', url, ['api:read']))
  t.equal(wrongScope.status, 403, 'a token for the issuer without ssf scopes')
  t.match(challenge(wrongScope), /^Bearer error="insufficient_scope"/)
  t.equal(wrongScope.json.error, 'insufficient_scope')
  const user = await passwordTokens(as, 'alice', 'api:read')
  t.equal((await call(url, 'GET', '/ssf/streams', user.access_token)).status, 401, 'a user\'s token for another audience')

  const reader = receiver(url, await receiverToken(url, 'reader', 'ssf.read'))
  t.equal((await reader.get()).status, 200, 'ssf.read reads')
  t.equal((await reader.create()).status, 403, 'but does not manage')
  t.equal((await reader.poll('x')).status, 403, 'nor poll')

  t.equal((await call(url, 'GET', '/ssf/streams', await mint('receiver-a', 'demo-api'))).status, 401, 'aud without the issuer')
  t.equal((await call(url, 'GET', '/ssf/streams', await mint('ghost', url))).status, 401, 'a client no longer registered')
  t.equal((await call(url, 'GET', '/ssf/streams', await mint('receiver-a', url))).status, 200, 'the same token for a registered client passes')

  const revoked = await receiverToken(url, 'receiver-b')
  t.equal((await call(url, 'GET', '/ssf/streams', revoked)).status, 200)
  const revocation = await postForm(`${url}/oauth2/revoke`, { token: revoked }, { authorization: basic('receiver-b', 'receiver-secret-0123456789') })
  t.equal(revocation.status, 200)
  t.equal((await call(url, 'GET', '/ssf/streams', revoked)).status, 401, 'a revoked token')
})

t.test('streams: create, read, update, replace, delete', async (t) => {
  const created = await a.create({ description: 'gateway 1', events_requested: [SESSION_REVOKED, 'urn:example:unknown'] })
  t.equal(created.status, 201)
  t.equal(created.headers.get('cache-control'), 'no-store')
  const id = String(created.json.stream_id)
  t.match(id, /^[A-Za-z0-9_-]{22}$/)
  t.same(created.json, {
    stream_id: id,
    iss: url,
    aud: 'receiver-a',
    delivery: { method: 'urn:ietf:rfc:8936', endpoint_url: `${url}/ssf/poll/${id}` },
    events_supported: [SESSION_REVOKED, KEYS_CHANGED],
    events_requested: [SESSION_REVOKED, 'urn:example:unknown'],
    events_delivered: [SESSION_REVOKED],
    description: 'gateway 1',
    inactivity_timeout: 3600,
    min_verification_interval: 5
  })
  t.same((await a.get(id)).json, created.json, 'GET with stream_id')
  t.same((await a.get()).json.map((s: { stream_id: string }) => s.stream_id), [id], 'GET without: the client\'s streams')
  t.same((await b.get()).json, [], 'another client sees none of them')
  for (const res of [await b.get(id), await b.remove(id), await b.status(id), await b.patch({ stream_id: id }), await b.verify({ stream_id: id }), await b.poll(id), await b.setStatus({ stream_id: id, status: 'paused' })]) {
    t.equal(res.status, 404, 'another client\'s stream is unknown to it')
  }

  const patched = await a.patch({ stream_id: id, description: 'gateway 1b', iss: url, events_delivered: [SESSION_REVOKED] })
  t.equal(patched.status, 200)
  t.same({ ...patched.json, description: undefined }, { ...created.json, description: undefined }, 'PATCH changes what it names only')
  t.equal(patched.json.description, 'gateway 1b')
  const push = await a.patch({ stream_id: id, delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: 'http://127.0.0.1:9/events', authorization_header: 'Bearer secret' } })
  t.same(push.json.delivery, { method: 'urn:ietf:rfc:8935', endpoint_url: 'http://127.0.0.1:9/events' }, 'to push; the authorization header is never echoed')

  const replaced = await a.put({ stream_id: id, events_requested: ['urn:example:unknown'] })
  t.equal(replaced.status, 200)
  t.same(replaced.json.delivery, { method: 'urn:ietf:rfc:8936', endpoint_url: `${url}/ssf/poll/${id}` }, 'PUT without delivery: poll again')
  t.equal(replaced.json.description, undefined, 'PUT drops what it leaves out')
  t.same(replaced.json.events_delivered, [], 'only what was asked for and is supported')

  t.equal((await a.remove(id)).status, 204)
  t.equal((await a.get(id)).status, 404)
  t.equal((await a.remove(id)).status, 404)
  t.equal((await a.poll(id)).status, 404, 'its receiver\'s next poll is a 404')
})

t.test('a client holds at most maxStreamsPerClient streams', async (t) => {
  const ids = [await a.stream(), await a.stream(), await a.stream()]
  const refused = await a.create()
  t.equal(refused.status, 409)
  t.same(refused.json, { err: 'too_many_streams', description: 'a client holds at most 3 streams' })
  t.equal((await b.create()).status, 201, 'another client is not counted')
  await a.remove(ids[0]!)
  t.equal((await a.create()).status, 201, 'room again after a delete')
  for (const s of (await a.get()).json) await a.remove(s.stream_id)
  for (const s of (await b.get()).json) await b.remove(s.stream_id)
})

t.test('bad requests are 400 JSON, never a 500', async (t) => {
  const id = await a.stream()
  t.teardown(async () => { await a.remove(id) })
  const cases: Array<[string, string, unknown, string?]> = [
    ['POST', '/ssf/streams', '{"delivery":', 'malformed JSON'],
    ['POST', '/ssf/streams', [1, 2]],
    ['POST', '/ssf/streams', { delivery: { method: 'urn:example:carrier-pigeon' } }],
    ['POST', '/ssf/streams', { delivery: { method: 'urn:ietf:rfc:8935' } }],
    ['POST', '/ssf/streams', { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: 'not a url' } }],
    ['POST', '/ssf/streams', { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: 'ftp://example.com/x' } }],
    ['POST', '/ssf/streams', { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: 'https://example.com/x', authorization_header: 'Bearer x\r\nX-Evil: 1' } }],
    ['POST', '/ssf/streams', { delivery: 'poll' }],
    ['POST', '/ssf/streams', { description: 'x'.repeat(257) }],
    ['POST', '/ssf/streams', { description: 42 }],
    ['POST', '/ssf/streams', { events_requested: SESSION_REVOKED }],
    ['PATCH', '/ssf/streams', { description: 'no id' }],
    ['PATCH', '/ssf/streams', { stream_id: 42 }],
    ['PATCH', '/ssf/streams', { stream_id: id, iss: 'https://someone-else' }],
    ['PATCH', '/ssf/streams', { stream_id: id, aud: 'receiver-b' }],
    ['PATCH', '/ssf/streams', { stream_id: id, delivery: { method: 'urn:ietf:rfc:8936', endpoint_url: 'https://elsewhere/poll' } }],
    ['POST', '/ssf/status', { stream_id: id, status: 'sleeping' }],
    ['POST', '/ssf/status', { stream_id: id }],
    ['POST', '/ssf/verify', { stream_id: id, state: 7 }],
    ['POST', `/ssf/poll/${id}`, { maxEvents: -1 }],
    ['POST', `/ssf/poll/${id}`, { maxEvents: '10' }],
    ['POST', `/ssf/poll/${id}`, { returnImmediately: 'yes' }],
    ['POST', `/ssf/poll/${id}`, { ack: 'jti' }],
    ['POST', `/ssf/poll/${id}`, { ack: [1] }],
    ['POST', `/ssf/poll/${id}`, { setErrs: { jti: 'bad' } }],
    ['POST', `/ssf/poll/${id}`, { setErrs: [] }]
  ]
  for (const [method, path, body] of cases) {
    const res = await call(url, method, path, a.token, body)
    t.equal(res.status, 400, `${method} ${path} ${JSON.stringify(body).slice(0, 80)}: ${res.text}`)
    t.equal(res.json?.err, 'invalid_request')
    t.type(res.json?.description, 'string')
  }
  const text = await call(url, 'POST', '/ssf/streams', a.token, 'description=x', { 'content-type': 'application/x-www-form-urlencoded' })
  t.same([text.status, text.json], [400, { err: 'invalid_request', description: 'the body must be application/json' }])
  const large = await call(url, 'POST', '/ssf/streams', a.token, { description: 'x'.repeat(70_000) })
  t.same([large.status, large.json?.err], [413, 'invalid_request'], 'past 64 KiB')
  t.equal((await call(url, 'GET', '/ssf/streams?stream_id=a&stream_id=b', a.token)).status, 400, 'stream_id twice')
  t.equal((await a.get('no such stream')).status, 404, 'a malformed id is unknown')
  t.equal((await a.get('AAAAAAAAAAAAAAAAAAAAAA')).status, 404, 'an unknown id too')
  t.equal((await a.status('AAAAAAAAAAAAAAAAAAAAAA')).status, 404)
})

t.test('status: read and set; paused holds events, disabled drops them', async (t) => {
  const id = await a.stream()
  t.teardown(async () => { await a.remove(id) })
  const user = async (): Promise<string> => (await passwordTokens(as, 'alice', 'api:read')).access_token
  const revoke = async (token: string): Promise<void> => {
    t.equal((await postForm(`${url}/oauth2/revoke`, { token }, { authorization: basic('cli', SECRETS.cli) })).status, 200)
  }
  const jtiOf = (token: string): string => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti
  await drain(url, a, id)
  t.same((await a.status(id)).json, { stream_id: id, status: 'enabled' })

  const paused = await a.setStatus({ stream_id: id, status: 'paused', reason: 'maintenance' })
  t.same([paused.status, paused.json], [200, { stream_id: id, status: 'paused', reason: 'maintenance' }])
  t.same((await a.status(id)).json, { stream_id: id, status: 'paused', reason: 'maintenance' })
  const held = await user()
  await revoke(held)
  const started = Date.now()
  const whilePaused = await a.poll(id, {})
  t.same(whilePaused.json, { sets: {}, moreAvailable: false }, 'a paused stream answers at once, with nothing')
  t.ok(Date.now() - started < 10_000, 'without waiting for pollWait')

  t.same((await a.setStatus({ stream_id: id, status: 'enabled' })).json, { stream_id: id, status: 'enabled' })
  const afterPause = await drain(url, a, id)
  t.same(afterPause.filter((s) => s.type === SESSION_REVOKED).map((s) => s.payload.sub_id?.jti), [jtiOf(held)], 'the event held while paused')
  t.same(afterPause.filter((s) => s.type === STREAM_UPDATED).map((s) => s.event.status), ['paused', 'enabled'], 'stream-updated events for the changes')
  t.same(afterPause.find((s) => s.type === STREAM_UPDATED)?.payload.sub_id, { format: 'opaque', id })

  t.equal((await a.setStatus({ stream_id: id, status: 'disabled' })).status, 200)
  await revoke(await user())
  t.same((await a.poll(id, {})).json.sets, {}, 'disabled: nothing')
  await a.setStatus({ stream_id: id, status: 'enabled' })
  const after = await user()
  await revoke(after)
  const afterDisable = await drain(url, a, id)
  t.same(afterDisable.filter((s) => s.type === SESSION_REVOKED).map((s) => s.payload.sub_id?.jti), [jtiOf(after)], 'only what came after re-enabling')
})

t.test('verification: a verification SET on that stream only; too often is a 429', async (t) => {
  const [id, other] = [await a.stream(), await a.stream()]
  t.teardown(async () => { await a.remove(id); await a.remove(other) })
  await drain(url, a, id)
  await drain(url, a, other)
  const res = await a.verify({ stream_id: id, state: 'c3RhdGU' })
  t.equal(res.status, 204)
  t.equal(res.text, '')
  const sets = await drain(url, a, id)
  t.equal(sets.length, 1)
  t.equal(sets[0]?.type, VERIFICATION)
  t.same(sets[0]?.event, { state: 'c3RhdGU' })
  t.same(sets[0]?.payload.sub_id, { format: 'opaque', id })
  t.equal(sets[0]?.payload.aud, 'receiver-a')
  t.same(await drain(url, a, other), [], 'the other stream gets nothing')
  const again = await a.verify({ stream_id: id })
  t.equal(again.status, 429)
  t.equal(again.json.err, 'too_many_requests')
  t.match(again.headers.get('retry-after'), /^[1-5]$/)
  t.equal((await a.verify({ stream_id: other })).status, 204, 'another stream has its own interval')
})
