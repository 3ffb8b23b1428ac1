/**
 * Shared Signals on Redis with two issuer instances: streams and events are shared, a poll held
 * on one instance wakes for an event made on the other, and with Redis down a revocation is a
 * 503 to retry, never a silent loss.
 */
import t from 'tap'
import { decodeJwt } from 'jose'
import { basic, postForm } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { passwordTokens, startSecondInstance, waitFor } from './fixtures/flows.ts'
import { drain, receiver, receiverToken, startSsfIssuer, verifySet } from './fixtures/ssf.ts'

const a = await startSsfIssuer(t, { kind: 'redis', extra: 'sharedSignals: { pollWait: 20 }\n' })
const b = await startSecondInstance(t, a)
const cli = { authorization: basic('cli', SECRETS.cli) }
const token = await receiverToken(a.url)
const onA = receiver(a.url, token)
const onB = receiver(b.url, token)

async function revokeOn (url: string): Promise<string> {
  const { access_token: accessToken } = await passwordTokens(a.as, 'alice', 'api:read')
  const res = await postForm(`${url}/oauth2/revoke`, { token: accessToken }, cli)
  if (res.status !== 200) throw new Error(`revoke: ${res.status}`)
  return String(decodeJwt(accessToken).jti)
}

t.test('a stream made on one instance is served by the other', async (t) => {
  const id = await onA.stream({ description: 'shared' })
  t.equal((await onB.get(id)).json.description, 'shared')
  const jti = await revokeOn(a.url)
  // The SETs name the configured issuer, whichever instance signs them.
  t.same((await drain(a.url, onB, id)).map((s) => s.payload.sub_id?.jti), [jti], 'an event made on A, polled from B')
  t.equal((await onB.remove(id)).status, 204)
  t.equal((await onA.get(id)).status, 404)
})

t.test('a poll held on A wakes for an event made on B', async (t) => {
  const id = await onA.stream()
  await drain(a.url, onA, id)
  const held = onA.poll(id, {})
  t.not(await waitFor(() => a.app.issuer.signals.waitingPolls === 1), -1, 'held on A')
  const jti = await revokeOn(b.url)
  const revokedAt = Date.now()
  const res = await held
  const took = Date.now() - revokedAt
  t.ok(took < 1000, `answered ${took} ms after B's revocation (pollWait is 20 s)`)
  const sets = Object.values(res.json.sets as Record<string, string>)
  t.same(await Promise.all(sets.map(async (set) => (await verifySet(set, a.url, 'receiver-a')).payload.sub_id?.jti)), [jti])
})

t.test('with Redis down, a revocation is a 503 to retry', async (t) => {
  const { access_token: accessToken } = await passwordTokens(a.as, 'alice', 'api:read')
  await a.redis?.kill()
  const res = await postForm(`${a.url}/oauth2/revoke`, { token: accessToken }, cli)
  t.equal(res.status, 503)
  t.equal(res.json.error, 'temporarily_unavailable')
  const poll = await onA.poll('AAAAAAAAAAAAAAAAAAAAAA')
  t.equal(poll.status, 503, 'so is a poll')
  await a.redis?.start()
})
