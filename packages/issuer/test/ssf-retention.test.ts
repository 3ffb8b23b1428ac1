/**
 * Time and restarts: events older than retention are neither delivered nor kept, a stream
 * nobody polls is deleted after its inactivity timeout, and the embedded issuer restarted on
 * the same data directory keeps its streams, events and acknowledgements.
 */
import t from 'tap'
import { decodeJwt } from 'jose'
import { basic, postForm } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { MovableClock, passwordTokens } from './fixtures/flows.ts'
import { drain, receiver, receiverToken, startSsfIssuer, type Receiver } from './fixtures/ssf.ts'

const cli = { authorization: basic('cli', SECRETS.cli) }

async function revokeOne (url: string, as: Parameters<typeof passwordTokens>[0]): Promise<string> {
  const { access_token: token } = await passwordTokens(as, 'alice', 'api:read')
  const res = await postForm(`${url}/oauth2/revoke`, { token }, cli)
  if (res.status !== 200) throw new Error(`revoke: ${res.status}`)
  return String(decodeJwt(token).jti)
}

const revokedJtis = async (url: string, r: Receiver, id: string): Promise<unknown[]> =>
  (await drain(url, r, id)).map((s) => s.payload.sub_id?.jti)

t.test('retention and inactivity, with a movable clock', async (t) => {
  const clock = new MovableClock()
  const { url, as, app } = await startSsfIssuer(t, { extra: 'sharedSignals: { retention: 600, inactivityTimeout: 1000 }\n', build: { clock } })
  // Every token is minted on the moved clock too; a receiver gets a fresh one after each move.
  const fresh = async (): Promise<Receiver> => receiver(url, await receiverToken(url))
  const early = await fresh()
  const kept = await early.stream()
  const old = await revokeOne(url, as)

  clock.advance(601)
  const recent = await revokeOne(url, as)
  const now = await fresh()
  t.same(await revokedJtis(url, now, kept), [recent], 'past retention: not delivered, though never acknowledged')
  t.same(await revokedJtis(url, now, await now.stream()), [recent], 'and not replayed to a new stream')

  await app.issuer.signals.prune()
  const probe = await app.issuer.signals.store.poll(kept, { ack: [], max: 100, since: 0, now: clock.now() })
  t.same(probe?.events.map((e) => e.subject.jti), [], 'pruned from the store itself')
  t.notOk(JSON.stringify(probe).includes(old))

  clock.advance(999)
  const later = await fresh()
  t.equal((await later.poll(kept)).status, 200, 'polled within its inactivity timeout: alive')
  clock.advance(1001)
  const last = await fresh()
  t.equal((await last.poll(kept)).status, 404, 'not polled for longer: deleted, its receiver gets a 404')
  t.same((await last.get()).json.map((s: { stream_id: string }) => s.stream_id).includes(kept), false)
  t.same(await revokedJtis(url, last, await last.stream()), [], 'a new stream starts with what is retained: nothing now')
})

t.test('an embedded issuer restarted on the same data directory keeps streams, events and acknowledgements', async (t) => {
  const first = await startSsfIssuer(t)
  const r = receiver(first.url, await receiverToken(first.url))
  const id = await r.stream({ description: 'kept across restarts' })
  const acked = await revokeOne(first.url, first.as)
  t.same(await revokedJtis(first.url, r, id), [acked])
  const pending = await revokeOne(first.url, first.as)
  await first.app.close()

  const second = await startSsfIssuer(t, { config: first.config })
  const again = receiver(second.url, await receiverToken(second.url))
  t.equal((await again.get(id)).json.description, 'kept across restarts', 'the stream')
  t.same(await revokedJtis(second.url, again, id), [pending], 'the event not acknowledged, and only it')
  const replay = await revokedJtis(second.url, again, await again.stream())
  t.same(replay, [acked, pending], 'the log: a new stream replays both')
})
