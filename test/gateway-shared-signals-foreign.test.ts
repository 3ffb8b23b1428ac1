/**
 * A gateway subscribed to a FOREIGN Shared Signals transmitter (issue 11): not the Gatehouse
 * issuer but another party (packages/fastify-auth/test/fixtures/ssf-transmitter.ts: its own
 * keys, token endpoint and SSF endpoints). Real gateway processes, no Redis.
 *
 * 1. A gateway in front of services whose users sign in at another identity provider: the
 *    gateway's `issuer` is that provider, and its session-revoked events (by session, by token)
 *    cut its tokens at the edge.
 * 2. A gateway on the Gatehouse issuer that also listens to a third party (a risk engine) whose
 *    events name Gatehouse tokens (`appliesTo: [the issuer]`); events about other issuers change
 *    nothing.
 * 3. The transmitter down longer than `revocation.maxStaleness`: fail closed (503 with a reason,
 *    /readyz names the transmitter), then serving again once it is back.
 */
import t from 'tap'
import { startTransmitter } from '../packages/fastify-auth/test/fixtures/ssf-transmitter.ts'
import { bearer, getJson, request, serviceToken, startStack, waitFor, type GatewayProcess } from './fixtures/processes.ts'

const BOUND_MS = 5000

const status = async (gateway: GatewayProcess, token: string): Promise<number> =>
  (await request(`${gateway.url}/api/me`, { headers: bearer(token) })).status

const refused = async (gateway: GatewayProcess, token: string, what: string): Promise<void> => {
  await waitFor(`${gateway.name} to refuse ${what}`, async () => await status(gateway, token) === 401 ? true : undefined, BOUND_MS, 5)
}

t.test('a gateway in front of another identity provider: its sessions cut at the edge', async (t) => {
  const tx = await startTransmitter()
  t.teardown(async () => { await tx.close() })
  const stack = await startStack(t, {
    gateways: [{
      name: 'foreign-gateway',
      configure: (config) => {
        config.issuer = tx.issuer
        config.sharedSignals.fromIssuer = false
        config.sharedSignals.transmitters = [{ issuer: tx.issuer, client: { id: tx.client.clientId, secret: tx.client.clientSecret } }]
      }
    }]
  })
  const gateway = stack.gateways[0] as GatewayProcess
  t.equal(tx.streamCount, 1, 'the gateway holds a stream at the transmitter')

  const session = await tx.mintAccessToken({ sid: 'foreign-session-1' })
  const sameSession = await tx.mintAccessToken({ sid: 'foreign-session-1' })
  const other = await tx.mintAccessToken({ sid: 'foreign-session-2' })
  for (const token of [session, sameSession, other]) t.equal(await status(gateway, token), 200, 'the provider\'s token is served')

  await tx.revokeSession('foreign-session-1')
  await refused(gateway, session, 'the revoked session\'s token')
  t.equal(await status(gateway, sameSession), 401, 'and every other token of that session')
  t.equal(await status(gateway, other), 200, 'another session is untouched')

  const single = await tx.mintAccessToken({ sid: 'foreign-session-3' })
  const jti = JSON.parse(Buffer.from(single.split('.')[1] ?? '', 'base64url').toString()) as { jti: string }
  t.equal(await status(gateway, single), 200)
  await tx.revokeToken(jti.jti)
  await refused(gateway, single, 'the token revoked by jwt_id')

  const metrics = await gateway.metrics()
  t.match(metrics, /gatehouse_gateway_ssf_events_total\{transmitter="[^"]+",result="applied"\} 2\b/, 'two events applied')
})

t.test('the Gatehouse issuer plus a third-party transmitter about its tokens', async (t) => {
  const tx = await startTransmitter()
  t.teardown(async () => { await tx.close() })
  const stack = await startStack(t, {
    gateways: [{
      name: 'gateway',
      configure: (config) => {
        config.revocation.maxStaleness = 3
        config.sharedSignals.transmitters = [{ issuer: tx.issuer, client: { id: tx.client.clientId, secret: tx.client.clientSecret }, appliesTo: [config.issuer] }]
      }
    }]
  })
  const { issuer } = stack
  const gateway = stack.gateways[0] as GatewayProcess
  const token = await serviceToken(issuer)
  const untouched = await serviceToken(issuer)
  const { jti } = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { jti: string }
  t.equal(await status(gateway, token), 200)

  // An event about another issuer's token with the same jti changes nothing.
  await tx.revokeToken(jti, 'https://elsewhere.example')
  await waitFor('the event about another issuer to be acknowledged', () => tx.acks.length >= 1 ? true : undefined)
  t.equal(await status(gateway, token), 200, 'an event about another issuer changes nothing')

  await tx.revokeToken(jti, issuer.url)
  await refused(gateway, token, 'the Gatehouse token the third party revoked')
  t.equal(await status(gateway, untouched), 200, 'another token is untouched')

  // Down longer than maxStaleness (3 s): fail closed, with the reason; back: serving again.
  tx.stop()
  await waitFor('the gateway to fail closed', async () => await status(gateway, untouched) === 503 ? true : undefined, 30_000, 100)
  const ready = await getJson<{ problems?: string[] }>(`${gateway.url}/readyz`)
  t.equal(ready.status, 503, 'not ready')
  t.match(ready.body.problems, [new RegExp(`revocations from ${tx.issuer.replace(/[/.]/g, '\\$&')} \\(Shared Signals\\) are stale`)], '/readyz names the transmitter')
  const answer = await request<{ error?: string }>(`${gateway.url}/api/me`, { headers: bearer(untouched) })
  t.equal(answer.body.error, 'temporarily_unavailable', 'a 503 in RFC 6750 terms')
  tx.start()
  await waitFor('the gateway to serve again', async () => await status(gateway, untouched) === 200 ? true : undefined, 60_000, 100)
  t.equal(await status(gateway, token), 401, 'the revocation learnt before the outage is kept')
})
