/**
 * Push delivery (RFC 8935) to a real HTTP receiver: each SET POSTed oldest first with the
 * stream's authorization header; 202 delivered, 400 refused and not sent again, 500 sent again
 * after a back-off; with Redis and two issuer instances, each SET delivered once.
 */
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { decodeJwt } from 'jose'
import { basic, postForm } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { passwordTokens, startSecondInstance, waitFor } from './fixtures/flows.ts'
import { receiver, receiverToken, startSsfIssuer, verifySet, type SsfIssuer } from './fixtures/ssf.ts'

interface Received {
  at: number
  headers: Record<string, string | string[] | undefined>
  set: string
  /** The revoked token's jti the SET names (or the stream id, for other events). */
  subject: string
}

/** A receiver answering each POST with the next status of `script` (202 once it runs out). */
async function startPushReceiver (t: Test): Promise<{ url: string, received: Received[], script: number[] }> {
  const received: Received[] = []
  const script: number[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => {
      const claims = decodeJwt(body) as { sub_id?: { jti?: string, id?: string } }
      received.push({ at: Date.now(), headers: req.headers, set: body, subject: String(claims.sub_id?.jti ?? claims.sub_id?.id) })
      const status = script.shift() ?? 202
      const payload = status === 400 ? JSON.stringify({ err: 'invalid_key', description: 'test refusal' }) : ''
      res.writeHead(status, { 'content-type': 'application/json' }).end(payload)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const address = server.address()
  return { url: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/events`, received, script }
}

async function revokeOne (issuer: Pick<SsfIssuer, 'url' | 'as'>): Promise<string> {
  const { access_token: token } = await passwordTokens(issuer.as, 'alice', 'api:read')
  const res = await postForm(`${issuer.url}/oauth2/revoke`, { token }, { authorization: basic('cli', SECRETS.cli) })
  if (res.status !== 200) throw new Error(`revoke: ${res.status}`)
  return String(decodeJwt(token).jti)
}

const pushStream = (endpoint: string): Record<string, unknown> => ({
  delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: endpoint, authorization_header: 'Bearer push-secret' }
})

t.test('202, 400 and 500-then-202', async (t) => {
  const issuer = await startSsfIssuer(t)
  const push = await startPushReceiver(t)
  const r = receiver(issuer.url, await receiverToken(issuer.url))
  const created = await r.create(pushStream(push.url))
  t.equal(created.status, 201)

  t.test('delivered: one POST per SET, in order, with the stream\'s header', async (t) => {
    const jtis = [await revokeOne(issuer), await revokeOne(issuer)]
    t.not(await waitFor(() => push.received.length >= 2), -1)
    t.same(push.received.map((p) => p.subject), jtis, 'oldest first')
    const [first] = push.received
    t.equal(first?.headers['content-type'], 'application/secevent+jwt')
    t.equal(first?.headers.accept, 'application/json')
    t.equal(first?.headers.authorization, 'Bearer push-secret')
    const verified = await verifySet(first?.set ?? '', issuer.url, 'receiver-a')
    t.equal(verified.event.reason_admin.en, 'token revoked')
    const next = await revokeOne(issuer)
    t.not(await waitFor(() => push.received.length >= 3), -1)
    t.same(push.received.map((p) => p.subject), [...jtis, next], 'a delivered SET is not sent again')
    push.received.length = 0
  })

  t.test('400: the receiver refuses the SET; it is not sent again', async (t) => {
    push.script.push(400)
    const refused = await revokeOne(issuer)
    t.not(await waitFor(() => push.received.length >= 1), -1)
    const next = await revokeOne(issuer)
    t.not(await waitFor(() => push.received.length >= 2), -1)
    t.same(push.received.map((p) => p.subject), [refused, next])
    push.received.length = 0
  })

  t.test('500: sent again after a back-off, and the next one waits its turn', async (t) => {
    push.script.push(500)
    const failing = await revokeOne(issuer)
    const next = await revokeOne(issuer)
    t.not(await waitFor(() => push.received.length >= 3), -1)
    t.same(push.received.map((p) => p.subject), [failing, failing, next], 'the same SET again, then the next')
    const gap = push.received[1]!.at - push.received[0]!.at
    t.ok(gap >= 900, `retried ${gap} ms later (back-off from 1 s)`)
    push.received.length = 0
  })

  t.test('a paused stream gets nothing until enabled again', async (t) => {
    const id = String(created.json.stream_id)
    t.equal((await r.setStatus({ stream_id: id, status: 'paused' })).status, 200)
    const held = await revokeOne(issuer)
    t.equal(await waitFor(() => push.received.length > 0, 1500), -1, 'nothing while paused')
    await r.setStatus({ stream_id: id, status: 'enabled' })
    t.not(await waitFor(() => push.received.some((p) => p.subject === held)), -1, 'delivered once enabled')
  })
})

t.test('with Redis, two instances: each SET is pushed once', async (t) => {
  const a = await startSsfIssuer(t, { kind: 'redis' })
  const b = await startSecondInstance(t, a)
  const push = await startPushReceiver(t)
  const r = receiver(a.url, await receiverToken(a.url))
  t.equal((await r.create(pushStream(push.url))).status, 201)
  const jtis: string[] = []
  for (let i = 0; i < 3; i++) {
    jtis.push(await revokeOne(a))
    jtis.push(await revokeOne({ url: b.url, as: b.as }))
  }
  t.not(await waitFor(() => push.received.length >= 6), -1)
  // Both instances had the stream to deliver; with the lease only one does.
  t.equal(await waitFor(() => push.received.length > 6, 1500), -1, 'no more than six')
  t.same(push.received.map((p) => p.subject), jtis, 'each once, in order')
})
