/**
 * Every kind of bad SET is refused: nothing reaches the list, it is logged once (without the
 * SET), reported in the next poll's setErrs with its RFC 8936 2.4.4 code, and the stream goes on.
 */
import t, { type Test } from 'tap'
import { SignJWT } from 'jose'
import { MemoryRevocationList } from '../src/revocation/index.ts'
import { SignalReceiver, type SignalReceiverOptions } from '../src/ssf/index.ts'
import { SESSION_REVOKED, startTransmitter, waitFor, type SsfTransmitter } from './fixtures/ssf-transmitter.ts'

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

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
const session = (sid: string): unknown => ({ format: 'complex', session: { format: 'opaque', id: sid } })

t.test('bad SETs are refused with their code, change nothing, and are logged once without the SET', async (t) => {
  const { tx, list, receiver, logs } = await setup(t)
  receiver.start()
  await receiver.ready()
  const now = Math.floor(Date.now() / 1000)
  const impostor = await tx.generateKey(tx.key.kid)
  const hmac = new TextEncoder().encode('a shared secret that nobody should accept here')
  const cases: Array<[string, string, () => Promise<string>]> = [
    ['signed by another key with the same kid', 'invalid_key', async () => await tx.emit({ subId: session('s-1'), key: impostor })],
    ['wrong iss', 'invalid_issuer', async () => await tx.emit({ subId: session('s-2'), claims: { iss: 'https://evil.example' } })],
    ['wrong aud', 'invalid_audience', async () => await tx.emit({ subId: session('s-3'), claims: { aud: 'another-receiver' } })],
    ['unknown event type', 'invalid_request', async () => await tx.emit({ subId: session('s-4'), type: 'https://schemas.openid.net/secevent/risc/event-type/account-disabled' })],
    ['two events', 'invalid_request', async () => await tx.emit({ subId: session('s-5'), claims: { events: { [SESSION_REVOKED]: {}, 'urn:example:other': {} } } })],
    ['garbled body', 'invalid_request', async () => tx.emitRaw('this is not a JWT at all')],
    ['three garbage segments', 'invalid_request', async () => tx.emitRaw('aaa.bbb.ccc')],
    ['missing sub_id', 'invalid_request', async () => await tx.emit({ claims: { sub_id: undefined } })],
    ['sub_id without a format', 'invalid_request', async () => await tx.emit({ subId: { id: 's-6' } })],
    ['jwt_id without jti', 'invalid_request', async () => await tx.emit({ subId: { format: 'jwt_id', iss: tx.issuer } })],
    ['complex session that is not opaque', 'invalid_request', async () => await tx.emit({ subId: { format: 'complex', session: { format: 'email', email: 'a@b.c' } } })],
    ['typ JWT', 'invalid_request', async () => await tx.emit({ subId: session('s-7'), header: { typ: 'JWT' } })],
    ['no typ', 'invalid_request', async () => await tx.emit({ subId: session('s-8'), header: { typ: undefined } })],
    ['no iat', 'invalid_request', async () => await tx.emit({ subId: session('s-9'), claims: { iat: undefined } })],
    ['jti not the delivery key', 'invalid_request', async () => await tx.emit({ subId: session('s-10'), claims: { jti: 'another-jti' } })],
    ['alg none', 'invalid_key', async () => {
      const payload = { iss: tx.issuer, aud: tx.client.clientId, jti: 'none-jti', iat: now, sub_id: session('s-11'), events: { [SESSION_REVOKED]: {} } }
      return tx.emitRaw(`${b64url({ alg: 'none', typ: 'secevent+jwt' })}.${b64url(payload)}.c2ln`, 'none-jti')
    }],
    ['HS256', 'invalid_key', async () => {
      const compact = await new SignJWT({ iss: tx.issuer, aud: tx.client.clientId, jti: 'hs-jti', iat: now, sub_id: session('s-12'), events: { [SESSION_REVOKED]: {} } })
        .setProtectedHeader({ alg: 'HS256', typ: 'secevent+jwt', kid: tx.key.kid }).sign(hmac)
      return tx.emitRaw(compact, 'hs-jti')
    }]
  ]
  const expected = new Map<string, [string, string]>()
  for (const [name, code, emit] of cases) expected.set(await emit(), [name, code])
  const good = await tx.revokeSession('s-good')
  await waitFor(() => tx.setErrs.length >= cases.length && tx.acks.some((a) => a.jti === good), 'every SET answered')
  for (const [jti, [name, code]] of expected) {
    const reported = tx.setErrs.filter((e) => e.jti === jti)
    t.equal(reported.length, 1, `${name}: reported once`)
    t.equal(reported[0]?.err, code, `${name}: ${code}`)
    t.type(reported[0]?.description, 'string', `${name}: with a description`)
    t.equal(tx.acks.some((a) => a.jti === jti), false, `${name}: not acknowledged`)
    const logged = logs.filter((l) => l.msg === 'shared signals: SET refused' && l.obj.jti === jti)
    t.equal(logged.length, 1, `${name}: logged once`)
  }
  t.equal(tx.setErrs.length, cases.length, 'nothing else reported')
  t.ok(list.isRevoked({ sid: 's-good' }), 'the good event after them is applied')
  t.equal(list.size, 1, 'the bad ones wrote nothing')
  t.match(receiver.stats, { applied: 1, refused: cases.length })
  t.notMatch(JSON.stringify(logs), /eyJ/, 'no SET (nor token) in the logs')
  await waitFor(() => tx.streams()[0]?.pending.length === 0, 'nothing redelivered')
})

t.test('an unknown kid refetches the JWKS once per cooldown: a rotated key is taken, an unknown one refused', async (t) => {
  const { tx, list, receiver } = await setup(t, { jwksCooldown: 200 })
  receiver.start()
  await receiver.ready()
  await tx.revokeSession('s-known')
  await waitFor(() => list.isRevoked({ sid: 's-known' }), 'the first event (keys loaded)')
  t.equal(tx.hits.jwks, 1)

  const rotated = await tx.generateKey()
  tx.publish(rotated)
  const byRotated = await tx.emit({ subId: session('s-rotated'), key: rotated })
  await waitFor(() => list.isRevoked({ sid: 's-rotated' }), 'the event signed with the new key')
  t.equal(tx.hits.jwks, 2, 'one refetch for the new kid')
  await waitFor(() => tx.acks.some((a) => a.jti === byRotated), 'its acknowledgement')

  const stranger = await tx.generateKey()
  const byStranger = await tx.emit({ subId: session('s-stranger'), key: stranger })
  await waitFor(() => tx.setErrs.some((e) => e.jti === byStranger), 'the refusal')
  t.equal(tx.setErrs.find((e) => e.jti === byStranger)?.err, 'invalid_key')
  t.equal(tx.hits.jwks, 3, 'one refetch for the unknown kid')
  t.equal(list.isRevoked({ sid: 's-stranger' }), false)
})

t.test('a SET that cannot be verified while the JWKS is unreachable waits, unacknowledged, and is applied later', async (t) => {
  const { tx, list, receiver } = await setup(t, { jwksCooldown: 100, timeout: 1000 })
  receiver.start()
  await receiver.ready()
  await waitFor(() => tx.heldPolls === 1, 'the long poll')
  // The keys are fetched for the first SET: the JWKS fails then.
  tx.jwksFailing = true
  const jti = await tx.revokeSession('s-later')
  await waitFor(() => receiver.stats.failures >= 1, 'a deferral')
  t.equal(list.isRevoked({ sid: 's-later' }), false)
  t.equal(tx.acks.some((a) => a.jti === jti) || tx.setErrs.some((e) => e.jti === jti), false, 'neither acknowledged nor refused')
  tx.jwksFailing = false
  await waitFor(() => list.isRevoked({ sid: 's-later' }), 'applied once the keys are back', 20_000)
  await waitFor(() => tx.acks.some((a) => a.jti === jti), 'acknowledged')
  t.equal(tx.setErrs.length, 0)
})
