/**
 * Two gateway processes sharing one redis-server with the issuer: a logout through gateway A is
 * enforced by gateway B within a bound (measured), other sessions of the same user keep
 * working, the resource server gets its back-channel logout, and a repeated logout is a 200.
 * Last, with the issuer stopped: a logout is a 502, yet the token is refused everywhere
 * (docs/product.md, The gateway: Logout).
 */
import t from 'tap'
import { bearer, request, startGateway, startStack, summarize, userSession, waitFor, type GatewayProcess, type UserSession } from './fixtures/processes.ts'

const LOGOUTS = 20
/** The bound asserted per logout, from A's 200 to B's first 401. */
const BOUND_MS = 1000

const stack = await startStack(t, { redis: true, gateways: [{}, {}] })
const { issuer, resourceServer } = stack
const [a, b] = stack.gateways as [GatewayProcess, GatewayProcess]
t.comment(`started (ms): ${JSON.stringify(stack.timings)}`)

const api = async (gateway: GatewayProcess, token: string): Promise<number> =>
  (await request(`${gateway.url}/api/items`, { headers: bearer(token) })).status

const logout = async (gateway: GatewayProcess, token: string) =>
  await request<{ revoked: boolean, session_ended: boolean, sid: string | null, notified: Array<{ uri: string, ok: boolean }> }>(
    `${gateway.url}/oauth2/logout`, { method: 'POST', headers: bearer(token) })

let other: UserSession

t.before(async () => {
  other = await userSession(issuer)
})

t.test('a user token works on both gateways', async (t) => {
  const session = await userSession(issuer)
  t.not(session.sid, other.sid, 'two logins, two sessions')
  for (const gateway of [a, b]) {
    const res = await request<{ path: string, headers: Record<string, string> }>(`${gateway.url}/api/items`, { headers: bearer(session.access_token) })
    t.equal(res.status, 200, `${gateway.name}: 200`)
    t.equal(res.body.path, '/api/items', `${gateway.name}: forwarded to the resource server`)
    t.equal(res.body.headers['x-auth-subject'], 'alice', `${gateway.name}: the subject reaches the upstream`)
  }
})

t.test(`a logout on A is enforced by B within ${BOUND_MS} ms (${LOGOUTS} sessions)`, async (t) => {
  /** ms from A's 200 to B's first 401 (negative: B refused before A had answered). */
  const delays: number[] = []
  /** ms from sending the logout to A to B's first 401 (the propagation, at poll resolution). */
  const propagation: number[] = []
  /** ms from sending the logout to A's 200. */
  const logoutTimes: number[] = []
  let acceptedAfterAnswer = 0
  const sids: string[] = []
  for (let i = 0; i < LOGOUTS; i++) {
    const session = await userSession(issuer)
    sids.push(session.sid)
    // Both gateways have verified (and cached) the token as valid.
    if (await api(a, session.access_token) !== 200 || await api(b, session.access_token) !== 200) {
      t.fail(`session ${i}: not accepted before the logout`)
      continue
    }

    // B is polled tightly (one request at a time) from before the logout is sent.
    const poll = { isPolling: true }
    let firstRefusal = -1
    let unexpected = 0
    const polls: Array<{ sentAt: number, status: number }> = []
    const poller = (async () => {
      while (poll.isPolling) {
        const sentAt = performance.now()
        const status = await api(b, session.access_token)
        polls.push({ sentAt, status })
        if (status === 401) { firstRefusal = performance.now(); return }
        if (status !== 200) unexpected++
      }
    })()
    const sent = performance.now()
    const res = await logout(a, session.access_token)
    const answered = performance.now()
    // The poller stops by itself at the first 401, or after the bound (then it failed).
    const deadline = setTimeout(() => { poll.isPolling = false }, BOUND_MS + 2000)
    await poller
    clearTimeout(deadline)
    t.equal(res.status, 200, `logout ${i}: 200 from A`)
    t.equal(unexpected, 0, `logout ${i}: B answered only 200 or 401 meanwhile`)
    if (firstRefusal < 0) {
      t.fail(`logout ${i}: B still accepted the token ${BOUND_MS + 2000} ms after A's 200`)
      continue
    }
    const delay = firstRefusal - answered
    delays.push(delay)
    propagation.push(firstRefusal - sent)
    logoutTimes.push(answered - sent)
    acceptedAfterAnswer += polls.filter((p) => p.sentAt >= answered && p.status === 200).length
    t.ok(delay < BOUND_MS, `logout ${i}: B refused the token ${delay.toFixed(1)} ms after A's 200 (${(firstRefusal - sent).toFixed(1)} ms after the logout was sent)`)
    // From then on: B keeps refusing (no flapping), and so does A.
    t.equal(await api(b, session.access_token), 401, `logout ${i}: B still refuses it`)
    t.equal(await api(a, session.access_token), 401, `logout ${i}: A refuses it`)
  }
  t.comment(`B's first 401, relative to A's 200:        ${summarize(delays)}`)
  t.comment(`  (<= 0: B refused before A's 200 arrived, in ${delays.filter((d) => d <= 0).length} of ${delays.length})`)
  t.comment(`B's first 401, from sending the logout to A: ${summarize(propagation)}`)
  t.comment(`logout round trip on A (issuer + back-channel): ${summarize(logoutTimes)}`)
  t.equal(acceptedAfterAnswer, 0, 'no request sent to B after A\'s 200 was accepted')
  t.equal(new Set(sids).size, LOGOUTS, 'every logout was a different session')

  t.test('the other session of the same user keeps working on both', async (t) => {
    for (const gateway of [a, b]) t.equal(await api(gateway, other.access_token), 200, gateway.name)
  })

  t.test('the resource server received a back-channel logout for each session', async (t) => {
    const received = await resourceServer.loggedOutSessions()
    const got = new Set(received.map((s) => s.sid))
    t.same(sids.filter((sid) => !got.has(sid)), [], 'every logged-out sid was delivered')
    t.notOk(got.has(other.sid), 'not the session that stayed')
    t.ok(received.every((s) => s.sub === 'alice'), 'each logout_token names the user')
  })
})

t.test('a second logout with the same token is a 200 too', async (t) => {
  const session = await userSession(issuer)
  const first = await logout(a, session.access_token)
  t.equal(first.status, 200, 'first logout')
  t.match(first.body, { revoked: true, session_ended: true, sid: session.sid })
  t.same(first.body.notified.map((n) => n.ok), [true], 'one receiver notified')
  for (const gateway of [a, b]) {
    const again = await logout(gateway, session.access_token)
    t.equal(again.status, 200, `again, on ${gateway.name}`)
    t.match(again.body, { revoked: true, session_ended: false, sid: session.sid }, `${gateway.name}: the session had already ended`)
  }
  t.equal(await api(b, session.access_token), 401, 'still refused')
  t.equal(await api(a, other.access_token), 200, 'the other session still works')
})

t.test('the refresh token of a logged-out session is dead', async (t) => {
  const session = await userSession(issuer)
  t.equal((await logout(b, session.access_token)).status, 200, 'logout through B')
  const res = await request<{ error: string }>(issuer.tokenEndpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from('demo-cli:demo-cli-secret').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: session.refresh_token }).toString()
  })
  t.equal(res.status, 400, 'refresh refused')
  t.equal(res.body.error, 'invalid_grant')
})

// Last: stops the issuer. docs/product.md: "An issuer that cannot be reached at all is a 502, but
// the token is already refused by this gateway and, through Redis, by every other."
t.test('logout while the issuer is down', async (t) => {
  // A gateway that has served tokens but never handled a logout yet.
  const c = await startGateway(t, stack.dir, issuer, resourceServer, { name: 'gateway-c', redis: stack.redis! })
  stack.services.push(c)
  const viaA = await userSession(issuer)
  const viaC = await userSession(issuer)
  for (const gateway of [a, b, c]) {
    t.equal(await api(gateway, viaA.access_token), 200, `${gateway.name} serves session 1`)
    t.equal(await api(gateway, viaC.access_token), 200, `${gateway.name} serves session 2`)
  }
  await issuer.stop()

  t.test('through a gateway that handled logouts before', async (t) => {
    const res = await logout(a, viaA.access_token)
    t.equal(res.status, 502, `502 (${res.text})`)
    for (const gateway of [a, b, c]) await waitFor(`${gateway.name} to refuse the token`, async () => await api(gateway, viaA.access_token) === 401 ? true : undefined, BOUND_MS)
    t.pass('refused by A at once and by B and C through Redis')
  })

  t.test('through a gateway whose first logout this is', async (t) => {
    const res = await logout(c, viaC.access_token)
    t.equal(res.status, 502, `502 (${res.status} ${res.text})`)
    t.equal(await api(c, viaC.access_token), 401, 'refused by the gateway it went through')
    for (const gateway of [a, b]) await waitFor(`${gateway.name} to refuse the token`, async () => await api(gateway, viaC.access_token) === 401 ? true : undefined, BOUND_MS)
    t.pass('refused by the others through Redis')
  })
})
