/**
 * The Shared Signals receiver against a real foreign transmitter (fixtures/ssf-transmitter.ts)
 * over HTTP: catch-up, long-poll delivery, acknowledgements, subjects, credentials, close.
 */
import t, { type Test } from 'tap'
import { MemoryRevocationList } from '../src/revocation/index.ts'
import { SignalReceiver, STREAM_UPDATED, VERIFICATION, type SignalReceiverOptions } from '../src/ssf/index.ts'
import { startTransmitter, waitFor, type SsfTransmitter } from './fixtures/ssf-transmitter.ts'

interface LogLine { level: 'info' | 'warn', obj: Record<string, unknown>, msg: string }

interface Setup {
  tx: SsfTransmitter
  list: MemoryRevocationList
  receiver: SignalReceiver
  logs: LogLine[]
}

async function setup (t: Test, tx: SsfTransmitter, overrides: Partial<SignalReceiverOptions> = {}): Promise<Setup> {
  const list = new MemoryRevocationList()
  const logs: LogLine[] = []
  const receiver = new SignalReceiver({
    issuer: tx.issuer,
    clientId: tx.client.clientId,
    clientSecret: tx.client.clientSecret,
    appliesTo: [tx.issuer],
    revocations: list,
    entryTtl: 300,
    log: {
      info: (obj, msg) => { logs.push({ level: 'info', obj: obj as Record<string, unknown>, msg }) },
      warn: (obj, msg) => { logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }) }
    },
    ...overrides
  })
  t.teardown(async () => {
    await receiver.close()
    await list.close()
  })
  return { tx, list, receiver, logs }
}

async function transmitter (t: Test, options?: Parameters<typeof startTransmitter>[0]): Promise<SsfTransmitter> {
  const tx = await startTransmitter(options)
  t.teardown(async () => await tx.close())
  return tx
}

const acked = (tx: SsfTransmitter, jti: string): boolean => tx.acks.some((a) => a.jti === jti)

t.test('catch-up: events emitted before start are on the list when ready() resolves, then acknowledged', async (t) => {
  const tx = await transmitter(t, { maxEvents: 2 })
  const first = await tx.revokeSession('sid-early-1')
  await tx.revokeSession('sid-early-2')
  const byToken = await tx.revokeToken('jti-early')
  const { receiver, list } = await setup(t, tx)
  t.equal(receiver.staleness, Infinity, 'Infinity before the first catch-up')
  receiver.start()
  await receiver.ready()
  t.ok(list.isRevoked({ sid: 'sid-early-1' }))
  t.ok(list.isRevoked({ sid: 'sid-early-2' }))
  t.ok(list.isRevoked({ jti: 'jti-early' }))
  t.equal(list.isRevoked({ sid: 'sid-other' }), false)
  t.equal(receiver.stats.applied, 3)
  t.ok(receiver.stats.polls >= 2, 'maxEvents 2: more than one catch-up poll')
  t.ok(receiver.staleness < 5000, `fresh after catch-up (${receiver.staleness} ms)`)
  // The last batch is acknowledged by the next (long) poll.
  await waitFor(() => acked(tx, first) && acked(tx, byToken), 'the acknowledgements')
  await waitFor(() => tx.heldPolls === 1, 'the long poll')
  t.same(tx.streams()[0]?.pending, [], 'nothing left to deliver')
  t.equal(tx.streams()[0]?.description?.startsWith('gatehouse receiver '), true, 'the default description names the process')
})

t.test('long poll: session-revoked by sid and by jwt_id lands on the list well under a second', async (t) => {
  const tx = await transmitter(t)
  const { receiver, list } = await setup(t, tx)
  receiver.start()
  await receiver.ready()
  await waitFor(() => tx.heldPolls === 1, 'the long poll')
  t.equal(receiver.staleness, 0, '0 while the poll is held')

  let started = Date.now()
  const bySession = await tx.revokeSession('sid-live')
  await waitFor(() => list.isRevoked({ sid: 'sid-live' }), 'the sid')
  const sidMs = Date.now() - started
  t.ok(sidMs < 1000, `sid applied in ${sidMs} ms`)

  await waitFor(() => tx.heldPolls === 1, 'the next long poll')
  started = Date.now()
  await tx.revokeToken('jti-live')
  await waitFor(() => list.isRevoked({ jti: 'jti-live' }), 'the jti')
  const jtiMs = Date.now() - started
  t.ok(jtiMs < 1000, `jti applied in ${jtiMs} ms`)
  t.equal(list.isRevoked({ sid: 'jti-live' }), false, 'a jti is not taken for a sid')

  await waitFor(() => acked(tx, bySession), 'the acknowledgement')
  t.equal(tx.setErrs.length, 0)
  t.equal(receiver.stats.applied, 2)
})

t.test('subjects: opaque is a sid; other issuers are ignored; user-only is acknowledged with no effect', async (t) => {
  const tx = await transmitter(t)
  const { receiver, list, logs } = await setup(t, tx, { appliesTo: ['https://other-idp.example', tx.issuer] })
  receiver.start()
  await receiver.ready()
  const opaque = await tx.emit({ subId: { format: 'opaque', id: 'sid-opaque' } })
  const foreignJti = await tx.revokeToken('jti-foreign', 'https://unknown-idp.example')
  const otherIdp = await tx.revokeToken('jti-other-idp', 'https://other-idp.example')
  const userOnly = await tx.emit({ subId: { format: 'complex', user: { format: 'iss_sub', iss: tx.issuer, sub: 'alice' } } })
  const email = await tx.emit({ subId: { format: 'email', email: 'alice@example.com' } })
  const foreignUser = await tx.emit({ subId: { format: 'complex', session: { format: 'opaque', id: 'sid-foreign' }, user: { format: 'iss_sub', iss: 'https://unknown-idp.example', sub: 'bob' } } })
  const all = [opaque, foreignJti, otherIdp, userOnly, email, foreignUser]
  await waitFor(() => all.every((jti) => acked(tx, jti)), 'every event acknowledged')
  t.ok(list.isRevoked({ sid: 'sid-opaque' }), 'opaque subject: sid')
  t.ok(list.isRevoked({ jti: 'jti-other-idp' }), 'an issuer in appliesTo')
  t.equal(list.isRevoked({ jti: 'jti-foreign' }), false, 'an issuer not in appliesTo: ignored')
  t.equal(list.isRevoked({ sid: 'sid-foreign' }), false, 'a session of a user of another issuer: ignored')
  t.equal(list.size, 2, 'nothing else written')
  t.equal(tx.setErrs.length, 0, 'none refused')
  t.match(receiver.stats, { applied: 2, ignored: 4, refused: 0 })
  t.ok(logs.some((l) => /not trusted/.test(l.msg) && l.obj.issuer === 'https://unknown-idp.example'), 'the ignored issuer is logged')
  t.ok(logs.some((l) => /names no session or token/.test(l.msg) && l.obj.format === 'email'), 'the email subject is logged')
})

t.test('verification and stream-updated events are acknowledged; a pause is logged', async (t) => {
  const tx = await transmitter(t)
  const { receiver, list, logs } = await setup(t, tx)
  receiver.start()
  await receiver.ready()
  const stream = (s: { id: string }): unknown => ({ format: 'opaque', id: s.id })
  const verification = await tx.emit({ type: VERIFICATION, subId: stream, event: { state: 'abc' } })
  const paused = await tx.emit({ type: STREAM_UPDATED, subId: stream, event: { status: 'paused', reason: 'maintenance' } })
  await waitFor(() => acked(tx, verification) && acked(tx, paused), 'both acknowledged')
  t.equal(list.size, 0)
  t.equal(tx.setErrs.length, 0)
  t.ok(logs.some((l) => l.level === 'warn' && l.obj.status === 'paused'), 'the pause is a warning')
  t.ok(logs.some((l) => /verification/.test(l.msg)))
})

t.test('close() deletes the stream, aborts the held poll and resolves promptly', async (t) => {
  const tx = await transmitter(t)
  const { receiver } = await setup(t, tx)
  receiver.start()
  await receiver.ready()
  await waitFor(() => tx.heldPolls === 1, 'the long poll')
  t.equal(tx.streamCount, 1)
  const started = Date.now()
  await receiver.close()
  t.ok(Date.now() - started < 2000, `closed in ${Date.now() - started} ms`)
  t.equal(tx.streamCount, 0, 'stream deleted')
  t.equal(tx.hits.delete, 1)
  await waitFor(() => tx.heldPolls === 0, 'the held poll to end')
  const polls = tx.hits.poll
  await receiver.close()
  t.equal(tx.hits.delete, 1, 'a second close does nothing')
  t.equal(tx.hits.poll, polls, 'no poll after close')
  receiver.start()
  t.equal(tx.hits.metadata, 1, 'start after close does nothing')
})

t.test('close() before the first catch-up rejects ready()', async (t) => {
  const tx = await transmitter(t)
  tx.stop()
  const { receiver } = await setup(t, tx)
  receiver.start()
  const ready = receiver.ready()
  await receiver.close()
  await t.rejects(ready, /closed before its first catch-up/)
})

t.test('a 401 gets a new token, once, and the stream goes on', async (t) => {
  const tx = await transmitter(t)
  const { receiver, list } = await setup(t, tx)
  receiver.start()
  await receiver.ready()
  await waitFor(() => tx.heldPolls === 1, 'the long poll')
  t.equal(tx.hits.token, 1, 'one token so far')
  tx.revokeAccessTokens()
  await tx.revokeSession('sid-after-401')
  // The held poll answers with the SET (its token was checked when it arrived); the next poll is a 401.
  await waitFor(() => list.isRevoked({ sid: 'sid-after-401' }), 'the sid')
  await waitFor(() => tx.heldPolls === 1 && tx.hits.token === 2, 'a new token and a new long poll')
  t.equal(receiver.stats.failures, 0, 'a renewed token is no failure')
  t.equal(tx.streamCount, 1, 'same stream')
})

t.test('metadata at the path-inserted well-known URL; token endpoint from discovery', async (t) => {
  const tx = await transmitter(t, { issuerPath: '/tenant-a' })
  t.match(tx.issuer, /\/tenant-a$/)
  const { receiver, list } = await setup(t, tx)
  await tx.revokeSession('sid-tenant')
  receiver.start()
  await receiver.ready()
  t.ok(list.isRevoked({ sid: 'sid-tenant' }))
  t.equal(tx.hits.metadata, 1, '/.well-known/ssf-configuration/tenant-a')
  t.equal(tx.hits.discovery, 1, '<issuer>/.well-known/openid-configuration')
})

t.test('a static bearer token: the SETs\' aud is the one the stream was created with', async (t) => {
  const tx = await transmitter(t)
  const token = await tokenFor(tx)
  const { receiver, list } = await setup(t, tx, { clientId: undefined, clientSecret: undefined, bearerToken: token })
  await tx.revokeToken('jti-bearer')
  receiver.start()
  await receiver.ready()
  t.ok(list.isRevoked({ jti: 'jti-bearer' }))
  t.equal(tx.hits.token, 1, 'only the test asked for a token')
  t.equal(tx.hits.discovery, 0)
})

t.test('a held poll that times out is renewed at once; staleness stays 0', async (t) => {
  const tx = await transmitter(t, { pollWait: 1 })
  const { receiver } = await setup(t, tx, { pollWait: 1 })
  receiver.start()
  await receiver.ready()
  const polls = receiver.stats.polls
  await waitFor(() => receiver.stats.polls >= polls + 2, 'two more empty answers')
  await waitFor(() => tx.heldPolls === 1, 'the long poll')
  t.equal(receiver.staleness, 0)
  t.equal(receiver.stats.failures, 0)
})

async function tokenFor (tx: SsfTransmitter): Promise<string> {
  const basic = Buffer.from(`${tx.client.clientId}:${encodeURIComponent(tx.client.clientSecret).replace(/%20/g, '+')}`).toString('base64')
  const response = await fetch(`${tx.issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&scope=ssf.manage'
  })
  return (await response.json() as { access_token: string }).access_token
}
