/**
 * `optional: true` (a gateway's own issuer, which may be another product): an issuer that
 * offers no Shared Signals (404 for its metadata) or will not give the client `ssf.manage`
 * stops the receiver with one warning, ready and never stale; without `optional` the same
 * answers are failures retried with back-off, and the receiver stays stale.
 */
import t, { type Test } from 'tap'
import { MemoryRevocationList } from '../src/revocation/index.ts'
import { SignalReceiver, type SignalReceiverOptions } from '../src/ssf/index.ts'
import { startTransmitter, waitFor, type SsfTransmitter } from './fixtures/ssf-transmitter.ts'

interface Setup { tx: SsfTransmitter, receiver: SignalReceiver, warnings: Array<{ obj: Record<string, unknown>, msg: string }> }

async function setup (t: Test, overrides: (tx: SsfTransmitter) => Partial<SignalReceiverOptions>): Promise<Setup> {
  const tx = await startTransmitter()
  const list = new MemoryRevocationList()
  const warnings: Setup['warnings'] = []
  const receiver = new SignalReceiver({
    issuer: tx.issuer,
    clientId: tx.client.clientId,
    clientSecret: tx.client.clientSecret,
    appliesTo: [tx.issuer],
    revocations: list,
    entryTtl: 300,
    timeout: 1000,
    log: { info: () => {}, warn: (obj, msg) => { warnings.push({ obj: obj as Record<string, unknown>, msg }) } },
    ...overrides(tx)
  })
  t.teardown(async () => {
    await receiver.close()
    await list.close()
    await tx.close()
  })
  return { tx, receiver, warnings }
}

t.test('optional, no metadata (404): stops at once, ready, staleness 0, one warning', async (t) => {
  const { tx, receiver, warnings } = await setup(t, (tx) => ({ optional: true, metadataUrl: `${tx.issuer}/no-such-metadata` }))
  receiver.start()
  await receiver.ready()
  t.equal(receiver.staleness, 0, 'never stale')
  t.equal(receiver.isOffered, false)
  t.equal(tx.hits.token, 0, 'no token asked for')
  t.equal(tx.hits.create, 0, 'no stream')
  t.equal(warnings.length, 1, 'one warning')
  t.match(warnings[0]?.msg, /NOT receiving revocations/)
  t.match(String(warnings[0]?.obj.err), /404/)
})

t.test('optional, the scope refused (invalid_scope): stops, ready, staleness 0', async (t) => {
  const { tx, receiver, warnings } = await setup(t, () => ({ optional: true }))
  tx.refuseScope = true
  receiver.start()
  await receiver.ready()
  t.equal(receiver.staleness, 0)
  t.equal(receiver.isOffered, false)
  t.equal(tx.hits.token, 1, 'asked once')
  t.equal(tx.hits.create, 0, 'no stream')
  t.match(warnings.map((w) => String(w.obj.err)), [/invalid_scope/])
})

t.test('not optional: the same answers are failures, retried, and the receiver stays stale', async (t) => {
  for (const cause of ['metadata', 'scope'] as const) {
    const { tx, receiver } = await setup(t, (tx) => cause === 'metadata' ? { metadataUrl: `${tx.issuer}/no-such-metadata` } : {})
    tx.refuseScope = cause === 'scope'
    receiver.start()
    await waitFor(() => receiver.stats.failures >= 2, `two failed attempts (${cause})`)
    t.equal(receiver.staleness, Infinity, `${cause}: stale, never caught up`)
    t.equal(receiver.isOffered, true)
  }
})
