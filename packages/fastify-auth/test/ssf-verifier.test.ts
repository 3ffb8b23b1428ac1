/**
 * End to end at the token level: a TokenVerifier reading a memory list fed by a Shared Signals
 * receiver refuses a foreign identity provider's token once its session or token is revoked
 * there, and answers `revocations_stale` while the transmitter has been down too long.
 */
import t from 'tap'
import { TokenVerifier } from '../src/index.ts'
import { MemoryRevocationList } from '../src/revocation/index.ts'
import { SignalReceiver, withSignalSources } from '../src/ssf/index.ts'
import { reasonOf } from './fixtures/reason.ts'
import { startTransmitter, waitFor } from './fixtures/ssf-transmitter.ts'

const tx = await startTransmitter()
const list = new MemoryRevocationList()
const receiver = new SignalReceiver({
  issuer: tx.issuer,
  clientId: tx.client.clientId,
  clientSecret: tx.client.clientSecret,
  appliesTo: [tx.issuer],
  revocations: list,
  entryTtl: 300,
  timeout: 1000
})
const maxStaleness = 1500
const verifier = new TokenVerifier({ issuer: tx.issuer, audience: 'demo-api', revocations: withSignalSources(list, [receiver]), maxStaleness })
t.teardown(async () => {
  await verifier.close()
  await receiver.close()
  await list.close()
  await tx.close()
})

t.test('before the first catch-up the list is stale: 503 revocations_stale', async (t) => {
  await verifier.ready()
  t.equal(await reasonOf(verifier.verify(await tx.mintAccessToken())), 'revocations_stale')
  receiver.start()
  await receiver.ready()
  t.equal(await reasonOf(verifier.verify(await tx.mintAccessToken())), 'accepted')
})

t.test('session-revoked at the transmitter: every token of the session is refused', async (t) => {
  const sid = 'session-of-alice'
  const first = await tx.mintAccessToken({ sid })
  const second = await tx.mintAccessToken({ sid })
  const other = await tx.mintAccessToken({ sid: 'session-of-bob', sub: 'bob' })
  t.equal(await reasonOf(verifier.verify(first)), 'accepted', 'cached as verified')
  await tx.revokeSession(sid)
  await waitFor(() => list.isRevoked({ sid }), 'the sid on the list')
  t.equal(await reasonOf(verifier.verify(first)), 'revoked', 'a cached token too')
  t.equal(await reasonOf(verifier.verify(second)), 'revoked')
  t.equal(await reasonOf(verifier.verify(other)), 'accepted', 'another session is untouched')
})

t.test('session-revoked for one token (jwt_id): that token only', async (t) => {
  const revoked = await tx.mintAccessToken({ jti: 'token-1', sid: 'session-x' })
  const sibling = await tx.mintAccessToken({ jti: 'token-2', sid: 'session-x' })
  await tx.revokeToken('token-1')
  await waitFor(() => list.isRevoked({ jti: 'token-1' }), 'the jti on the list')
  t.equal(await reasonOf(verifier.verify(revoked)), 'revoked')
  t.equal(await reasonOf(verifier.verify(sibling)), 'accepted')
})

t.test('transmitter down past maxStaleness: revocations_stale; revoked stays revoked; back when it is up', async (t) => {
  const good = await tx.mintAccessToken()
  const revoked = await tx.mintAccessToken({ sid: 'session-of-alice' })
  await waitFor(() => tx.heldPolls === 1, 'the long poll')
  tx.stop()
  t.equal(await reasonOf(verifier.verify(good)), 'accepted', 'not stale yet')
  await waitFor(() => receiver.staleness > maxStaleness, 'staleness past maxStaleness')
  t.equal(await reasonOf(verifier.verify(good)), 'revocations_stale')
  t.equal(await reasonOf(verifier.verify(revoked)), 'revoked', 'the list is kept')
  tx.start()
  await waitFor(() => receiver.staleness <= maxStaleness, 'fresh again', 30_000)
  t.equal(await reasonOf(verifier.verify(good)), 'accepted')
})
