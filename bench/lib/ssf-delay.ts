/**
 * Scenario (f) of bench/gateway.ts: how long a logout made AT THE ISSUER (OIDC RP-Initiated
 * Logout, `GET /oauth2/logout?id_token_hint=...`) takes to be enforced by a gateway that shares
 * no Redis with it: the issuer's Shared Signals stream (a CAEP session-revoked SET, long poll)
 * is the only way the gateway can learn of it. Per sample, with a fresh user session (password
 * grant, so it has a `sid` and an id_token):
 * 1. the gateway serves its access token (200), so the token is in its verified-token cache;
 * 2. t0; the logout request to the issuer, without waiting for its answer;
 * 3. GET the gateway with the token in a tight loop (one keep-alive connection) until it
 *    answers 401; the delay is t(401 received) - t0: the issuer's work (session end, the event
 *    written, the held poll answered) and the gateway's (SET verified, mirror written).
 */
import { bearer, keepAliveAgent, send } from './http.ts'
import type { DelayResult } from './revocation-delay.ts'

/** bench/fixtures/gateway-issuer.yaml: a password-grant client and its user. */
export const BENCH_CLI = { id: 'bench-cli', secret: 'c5kXO7wzVlIjuCslCsBavwU8-w_6Zyiad6Rg4BBXguE' }
export const BENCH_USER = { username: 'bench-user', password: 'bench-user-password-not-for-production' }

export interface UserSession { accessToken: string, idToken: string }

/** `count` sessions of the bench user, each with its own `sid`. */
export async function userSessions (tokenUrl: string, count: number): Promise<UserSession[]> {
  const agent = keepAliveAgent(4)
  const sessions: UserSession[] = []
  const body = new URLSearchParams({ grant_type: 'password', username: BENCH_USER.username, password: BENCH_USER.password, scope: 'openid api:read' }).toString()
  const headers = {
    'content-type': 'application/x-www-form-urlencoded',
    authorization: `Basic ${Buffer.from(`${encodeURIComponent(BENCH_CLI.id)}:${encodeURIComponent(BENCH_CLI.secret)}`).toString('base64')}`
  }
  try {
    for (let i = 0; i < count; i++) {
      const reply = await send(tokenUrl, { method: 'POST', headers, body, agent })
      if (reply.status !== 200) throw new Error(`the issuer refused a user session: HTTP ${reply.status} ${reply.body.slice(0, 300)}`)
      const answer = JSON.parse(reply.body) as { access_token?: unknown, id_token?: unknown }
      if (typeof answer.access_token !== 'string' || typeof answer.id_token !== 'string') throw new Error('the token response lacks access_token or id_token')
      sessions.push({ accessToken: answer.access_token, idToken: answer.id_token })
    }
  } finally {
    agent.destroy()
  }
  return sessions
}

export async function measureIssuerLogoutDelay (issuer: string, gateway: string, path: string, sessions: UserSession[], limitMs = 5000): Promise<DelayResult> {
  const pollAgent = keepAliveAgent(1)
  const logoutAgent = keepAliveAgent(1)
  const samples: number[] = []
  const logoutMs: number[] = []
  let polls = 0
  let failures = 0
  try {
    for (const session of sessions) {
      const before = await send(gateway + path, { headers: bearer(session.accessToken), agent: pollAgent })
      if (before.status !== 200) throw new Error(`the gateway refused a fresh token: HTTP ${before.status} ${before.body.slice(0, 200)}`)
      const t0 = performance.now()
      const logout = send(`${issuer}/oauth2/logout?id_token_hint=${encodeURIComponent(session.idToken)}`, { agent: logoutAgent }).then((reply) => {
        logoutMs.push(performance.now() - t0)
        return reply
      })
      let enforcedAt = NaN
      while (performance.now() - t0 < limitMs) {
        const reply = await send(gateway + path, { headers: bearer(session.accessToken), agent: pollAgent })
        polls++
        if (reply.status === 401) { enforcedAt = performance.now(); break }
        if (reply.status !== 200) throw new Error(`the gateway answered HTTP ${reply.status} while polling: ${reply.body.slice(0, 200)}`)
      }
      const answer = await logout
      // No browser session and a valid hint: the issuer ends the session and shows its signed-out page.
      if (answer.status !== 200 || !/signed out/i.test(answer.body)) {
        throw new Error(`the logout at the issuer failed: HTTP ${answer.status} ${answer.body.slice(0, 300)}`)
      }
      if (Number.isNaN(enforcedAt)) failures++
      else samples.push(enforcedAt - t0)
    }
  } finally {
    pollAgent.destroy()
    logoutAgent.destroy()
  }
  return { samples, logoutMs, pollsPerSample: polls / Math.max(1, sessions.length), failures }
}
