/**
 * Audit events of Shared Signals deliveries (docs/operations.md, Audit events), against real
 * receivers: a push answered 500 (ssf.push.failed, warn) then 202 (ssf.push.delivered, debug),
 * a push refused with 400 (ssf.push.refused, warn); a poll acknowledging SETs
 * (ssf.poll.acknowledged, debug) and reporting one as bad (ssf.poll.set_error, warn). Each SET
 * is named by its `jti`; the stream's authorization header and the SETs are never logged.
 */
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { decodeJwt } from 'jose'
import { basic, postForm } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { passwordTokens, waitFor } from './fixtures/flows.ts'
import { receiver, receiverToken, startSsfIssuer, RECEIVER_SECRET } from './fixtures/ssf.ts'
import { captureLog, LEVELS } from './fixtures/log-capture.ts'

const PUSH_AUTHORIZATION = 'Bearer push-header-secret-0123456789'

/** A push receiver answering with the next status of `script` (202 once it runs out); keeps the SETs' jtis. */
async function startPushReceiver (t: Test): Promise<{ url: string, sets: string[], jtis: string[], script: number[] }> {
  const sets: string[] = []
  const jtis: string[] = []
  const script: number[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => {
      sets.push(body)
      jtis.push(String(decodeJwt(body).jti))
      const status = script.shift() ?? 202
      res.writeHead(status, { 'content-type': 'application/json' }).end(status === 400 ? JSON.stringify({ err: 'invalid_issuer', description: 'test refusal' }) : '')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const address = server.address()
  return { url: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/events`, sets, jtis, script }
}

const log = captureLog('debug')
const issuer = await startSsfIssuer(t, { build: { logger: log.logger } })
const tokens: string[] = []

/** Revokes a fresh access token: one session-revoked event for every stream. */
async function revokeOne (): Promise<void> {
  const { access_token: token } = await passwordTokens(issuer.as, 'alice', 'api:read')
  tokens.push(token)
  const res = await postForm(`${issuer.url}/oauth2/revoke`, { token }, { authorization: basic('cli', SECRETS.cli) })
  if (res.status !== 200) throw new Error(`revoke: ${res.status}`)
}

const forSet = (event: string, jti: string | undefined): Array<Record<string, unknown>> => log.events(event).filter((l) => l.jti === jti)

t.test('push: failed (warn), then delivered (debug); refused (warn)', async (t) => {
  const push = await startPushReceiver(t)
  const r = receiver(issuer.url, await receiverToken(issuer.url))
  tokens.push(r.token)
  const created = await r.create({ delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: push.url, authorization_header: PUSH_AUTHORIZATION } })
  t.equal(created.status, 201)
  const streamId = String(created.json.stream_id)

  push.script.push(500)
  await revokeOne()
  t.not(await waitFor(() => push.jtis.length >= 2), -1, 'sent again after the back-off')
  const [jti] = push.jtis
  t.equal(push.jtis[1], jti, 'the same SET')
  t.not(await waitFor(() => forSet('ssf.push.delivered', jti).length > 0), -1)
  const failed = forSet('ssf.push.failed', jti)
  t.equal(failed.length, 1, 'one failure line')
  t.match(failed[0], { level: LEVELS.warn, stream_id: streamId, client_id: 'receiver-a', status: 500, reason: 'bad_status' })
  const delivered = forSet('ssf.push.delivered', jti)
  t.equal(delivered.length, 1, 'one delivery line')
  t.match(delivered[0], { level: LEVELS.debug, stream_id: streamId, client_id: 'receiver-a', status: 202 })

  push.script.push(400)
  await revokeOne()
  t.not(await waitFor(() => push.jtis.length >= 3), -1)
  const refusedJti = push.jtis[2]
  t.not(await waitFor(() => forSet('ssf.push.refused', refusedJti).length > 0), -1)
  t.match(forSet('ssf.push.refused', refusedJti), [{ level: LEVELS.warn, stream_id: streamId, status: 400, reason: 'invalid_issuer', description: 'test refusal' }])
  t.same(forSet('ssf.push.delivered', refusedJti), [], 'refused, not delivered')
  t.same(forSet('ssf.push.failed', refusedJti), [], 'and not to be retried')
  t.equal((await r.remove(streamId)).status, 204)
  const text = log.text()
  t.notOk(text.includes('push-header-secret'), 'the stream\'s authorization header is not logged')
  for (const set of push.sets) t.notOk(text.includes(set), 'no pushed SET is logged')
})

t.test('poll: acknowledgements (debug) and reported SET errors (warn)', async (t) => {
  const r = receiver(issuer.url, await receiverToken(issuer.url, 'receiver-b'))
  tokens.push(r.token)
  const streamId = await r.stream()
  await revokeOne()
  await revokeOne()
  const first = await r.poll(streamId, { returnImmediately: true })
  const jtis = Object.keys(first.json.sets as Record<string, string>)
  t.ok(jtis.length >= 2, 'two SETs (or more)')
  const [good, bad, ...rest] = jtis
  const answer = await r.poll(streamId, { returnImmediately: true, ack: [good, ...rest], setErrs: { [bad ?? '']: { err: 'invalid_key', description: 'cannot verify' } } })
  t.equal(answer.status, 200)
  const id = answer.headers.get('x-request-id')
  const acks = log.events('ssf.poll.acknowledged').filter((l) => l.reqId === id)
  t.match(acks, [{ level: LEVELS.debug, stream_id: streamId, client_id: 'receiver-b', count: jtis.length - 1 }], 'one line for the acknowledgements')
  t.match(log.events('ssf.poll.set_error').filter((l) => l.reqId === id), [{ level: LEVELS.warn, stream_id: streamId, client_id: 'receiver-b', jti: bad, reason: 'invalid_key', description: 'cannot verify' }])
  const text = log.text()
  for (const set of Object.values(first.json.sets as Record<string, string>)) t.notOk(text.includes(set), 'no polled SET is logged')
})

t.test('no token or secret is in the log', async (t) => {
  const text = log.text()
  t.ok(tokens.length >= 4)
  for (const token of tokens) t.notOk(text.includes(token), 'no access token')
  t.notOk(text.includes(RECEIVER_SECRET), 'no receiver secret')
  t.notOk(text.includes(SECRETS.cli), 'no client secret')
})
