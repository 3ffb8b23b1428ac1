/**
 * The receiver when things go wrong: the transmitter down (staleness grows, the list is kept,
 * recovery after a restart that lost the stream), a stream removed, bad credentials; and
 * withSignalSources, the list view whose staleness is the worst of its feeds.
 */
import t, { type Test } from 'tap'
import { MemoryRevocationList, type RevocationList } from '../src/revocation/index.ts'
import { SignalReceiver, withSignalSources, type SignalReceiverOptions } from '../src/ssf/index.ts'
import { startTransmitter, waitFor, type SsfTransmitter } from './fixtures/ssf-transmitter.ts'

interface LogLine { level: string, obj: Record<string, unknown>, msg: string }

async function setup (t: Test, overrides: Partial<SignalReceiverOptions> = {}): Promise<{ tx: SsfTransmitter, list: MemoryRevocationList, receiver: SignalReceiver, logs: LogLine[] }> {
  const tx = await startTransmitter()
  const list = new MemoryRevocationList()
  const logs: LogLine[] = []
  const receiver = new SignalReceiver({
    issuer: tx.issuer,
    clientId: tx.client.clientId,
    clientSecret: tx.client.clientSecret,
    appliesTo: [tx.issuer],
    revocations: list,
    entryTtl: 300,
    timeout: 1000,
    log: {
      info: (obj, msg) => { logs.push({ level: 'info', obj: obj as Record<string, unknown>, msg }) },
      warn: (obj, msg) => { logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }) }
    },
    ...overrides
  })
  t.teardown(async () => {
    await receiver.close()
    await list.close()
    await tx.close()
  })
  return { tx, list, receiver, logs }
}

t.test('transmitter down: staleness grows, the list is kept; after a restart that lost the stream, a new one replays', async (t) => {
  const { tx, list, receiver } = await setup(t)
  await tx.revokeSession('sid-before')
  receiver.start()
  await receiver.ready()
  await waitFor(() => tx.heldPolls === 1, 'the long poll')
  t.equal(receiver.staleness, 0)

  tx.stop()
  await waitFor(() => receiver.staleness > 1500, 'staleness past 1.5 s')
  t.ok(receiver.stats.failures >= 1, 'failures counted')
  t.ok(list.isRevoked({ sid: 'sid-before' }), 'the list is kept')
  const during = await tx.revokeSession('sid-during')

  tx.start({ dropStreams: true })
  await waitFor(() => list.isRevoked({ sid: 'sid-during' }), 'the event emitted while down', 30_000)
  t.equal(tx.hits.create, 2, 'the 404 made a new stream')
  t.equal(tx.streamCount, 1)
  await waitFor(() => tx.acks.some((a) => a.jti === during), 'its acknowledgement')
  await waitFor(() => tx.heldPolls === 1, 'a long poll again')
  t.equal(receiver.staleness, 0, 'fresh again')
  t.equal(receiver.stats.applied, 3, 'the replayed event applied again: harmless')
})

t.test('a stream removed by the transmitter (inactivity) is replaced at once, without a failure', async (t) => {
  const { tx, list, receiver } = await setup(t)
  receiver.start()
  await receiver.ready()
  await waitFor(() => tx.heldPolls === 1, 'the long poll')
  tx.dropStreams()
  await waitFor(() => tx.hits.create === 2 && tx.heldPolls === 1, 'a new stream, polled')
  await tx.revokeToken('jti-new-stream')
  await waitFor(() => list.isRevoked({ jti: 'jti-new-stream' }), 'an event on the new stream')
  t.equal(receiver.stats.failures, 0)
  t.equal(receiver.staleness, 0)
})

t.test('the transmitter down at start: not ready, staleness Infinity; ready once it is up', async (t) => {
  const { tx, list, receiver } = await setup(t)
  await tx.revokeSession('sid-waiting')
  tx.stop()
  receiver.start()
  let isReady = false
  const ready = receiver.ready().then(() => { isReady = true })
  await waitFor(() => receiver.stats.failures >= 2, 'two failed attempts')
  t.equal(isReady, false)
  t.equal(receiver.staleness, Infinity)
  tx.start()
  await ready
  t.ok(list.isRevoked({ sid: 'sid-waiting' }))
})

t.test('bad client credentials: failures with back-off, never the secret in the logs', async (t) => {
  const { tx, receiver, logs } = await setup(t, { clientSecret: 'not the secret' })
  receiver.start()
  await waitFor(() => receiver.stats.failures >= 1, 'a failure')
  const first = Date.now()
  await waitFor(() => receiver.stats.failures >= 2, 'a second failure')
  // Back-off after the first failure: 0.5 s with equal jitter, so at least 250 ms.
  t.ok(Date.now() - first >= 240, `backed off ${Date.now() - first} ms`)
  t.equal(receiver.staleness, Infinity)
  t.equal(tx.streamCount, 0)
  t.match(logs.find((l) => l.level === 'warn')?.obj.err, /HTTP 401 \(invalid_client\)/)
  t.notMatch(JSON.stringify(logs), /not the secret|Basic /)
})

t.test('close() while the transmitter is down resolves promptly and does not throw', async (t) => {
  const { tx, receiver, logs } = await setup(t)
  receiver.start()
  await receiver.ready()
  tx.stop()
  await waitFor(() => receiver.stats.failures >= 1, 'a failure')
  const started = Date.now()
  await receiver.close()
  t.ok(Date.now() - started < 2500, `closed in ${Date.now() - started} ms (timeout 1000)`)
  t.ok(logs.some((l) => /could not be deleted/.test(l.msg)), 'the failed delete is logged')
})

/** A source the test moves by hand. */
function source (staleness: number): { staleness: number, isReady: boolean, closed: number, ready: () => Promise<void>, release: () => void, close: () => Promise<void> } {
  let release = (): void => {}
  const readiness = new Promise<void>((resolve) => { release = resolve })
  const s = {
    staleness,
    isReady: false,
    closed: 0,
    ready: async () => { await readiness; s.isReady = true },
    release: () => { release() },
    close: async () => { s.closed++ }
  }
  return s
}

t.test('withSignalSources: staleness is the worst feed, ready waits for all, the rest is the list', async (t) => {
  const list = new MemoryRevocationList()
  const a = source(0)
  const b = source(Infinity)
  const view: RevocationList = withSignalSources(list, [a, b])
  t.equal(view.staleness, Infinity)
  b.staleness = 1200
  a.staleness = 300
  t.equal(view.staleness, 1200)
  b.staleness = 0
  t.equal(view.staleness, 300)
  a.staleness = 0
  t.equal(view.staleness, 0, 'the memory list is 0')

  let isReady = false
  const ready = view.ready().then(() => { isReady = true })
  a.release()
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(isReady, false, 'one source is not ready yet')
  b.release()
  await ready

  await view.revoke({ sid: 's' }, 60)
  t.ok(list.isRevoked({ sid: 's' }), 'revoke writes the list')
  t.ok(view.isRevoked({ sid: 's' }))
  t.equal(view.size, 1)
  t.equal(view.pendingWrites, undefined)
  await view.close()
  t.same([a.closed, b.closed], [1, 1], 'close closes the sources')
})

t.test('withSignalSources with a real receiver: stale while its transmitter is down', async (t) => {
  const { tx, list, receiver } = await setup(t)
  const view = withSignalSources(list, [receiver])
  receiver.start()
  await view.ready()
  await waitFor(() => tx.heldPolls === 1, 'the long poll')
  t.equal(view.staleness, 0)
  tx.stop()
  await waitFor(() => view.staleness > 1000, 'the view stale')
})

t.test('a list that refuses an entry: the SET is not acknowledged, and is applied when delivered again', async (t) => {
  const inner = new MemoryRevocationList()
  t.teardown(async () => await inner.close())
  let refusals = 1
  let releaseSlow: (() => void) | undefined
  const list: RevocationList = Object.assign(Object.create(inner) as RevocationList, {
    revoke: async (entry: { sid?: string, jti?: string }, ttl: number) => {
      if (entry.sid === 'sid-slow') await new Promise<void>((resolve) => { releaseSlow = resolve })
      if (entry.sid === 'sid-refused' && refusals-- > 0) throw new Error('the store is full')
      await inner.revoke(entry, ttl)
    },
    isRevoked: (claims: { sid?: string, jti?: string }) => inner.isRevoked(claims)
  })
  const { tx, receiver, logs } = await setup(t, { revocations: list })
  receiver.start()
  await receiver.ready()

  const refused = await tx.revokeSession('sid-refused')
  await waitFor(() => inner.isRevoked({ sid: 'sid-refused' }), 'applied on the second delivery', 20_000)
  t.equal(receiver.stats.failures, 1, 'the refusal backed off once')
  t.ok(logs.some((l) => /refused the entry/.test(l.msg)))
  await waitFor(() => tx.acks.some((a) => a.jti === refused), 'acknowledged after it was written')
  t.equal(tx.acks.filter((a) => a.jti === refused).length, 1, 'acknowledged once')
  t.equal(tx.setErrs.length, 0, 'not reported as a bad SET')

  const slow = await tx.revokeSession('sid-slow')
  await waitFor(() => releaseSlow !== undefined, 'the write under way')
  // The loop awaits the write: no poll, so no acknowledgement, can go out meanwhile.
  t.equal(tx.heldPolls, 0, 'no poll while the write is pending')
  t.equal(tx.acks.some((a) => a.jti === slow), false)
  releaseSlow?.()
  await waitFor(() => tx.acks.some((a) => a.jti === slow), 'acknowledged once written')
  t.ok(inner.isRevoked({ sid: 'sid-slow' }))
})
