/**
 * Scenario (e) of bench/gateway.ts: how long a logout made through gateway A takes to be
 * enforced by gateway B, both on one Redis. Per sample, with a fresh token:
 * 1. B serves it (200), so B has it in its verified-token cache, as a live token would be;
 * 2. t0; POST /oauth2/logout to A, without waiting for its answer;
 * 3. GET B with the token in a tight loop (one keep-alive connection) until B answers 401;
 *    the delay is t(401 received) - t0: it includes A's work (verify, Redis write, PUBLISH)
 *    and B's (message, mirror), and a poll round trip at most.
 * A's answer must be a 200 `revoked: true` and A must refuse the token too.
 */
import { bearer, keepAliveAgent, send } from './http.ts'
import { median } from './report.ts'

export interface DelayResult {
  samples: number[]
  /** A's logout answer time, ms (it also waits for the issuer's session end) */
  logoutMs: number[]
  /** Requests B answered per sample, on average */
  pollsPerSample: number
  /** Samples where B still served the token after the time limit */
  failures: number
}

/** Percentile `p` (0..100) of `values`, nearest rank. */
export function percentile (values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))] ?? NaN
}

export async function measureRevocationDelay (a: string, b: string, path: string, tokens: string[], limitMs = 2000): Promise<DelayResult> {
  const pollAgent = keepAliveAgent(1)
  const logoutAgent = keepAliveAgent(1)
  const samples: number[] = []
  const logoutMs: number[] = []
  let polls = 0
  let failures = 0
  try {
    for (const token of tokens) {
      const before = await send(b + path, { headers: bearer(token), agent: pollAgent })
      if (before.status !== 200) throw new Error(`gateway B refused a fresh token: HTTP ${before.status} ${before.body.slice(0, 200)}`)
      const t0 = performance.now()
      const logout = send(a + '/oauth2/logout', { method: 'POST', headers: bearer(token), agent: logoutAgent }).then((reply) => {
        logoutMs.push(performance.now() - t0)
        return reply
      })
      let enforcedAt = NaN
      while (performance.now() - t0 < limitMs) {
        const reply = await send(b + path, { headers: bearer(token), agent: pollAgent })
        polls++
        if (reply.status === 401) { enforcedAt = performance.now(); break }
        if (reply.status !== 200) throw new Error(`gateway B answered HTTP ${reply.status} while polling: ${reply.body.slice(0, 200)}`)
      }
      const answer = await logout
      if (answer.status !== 200 || (JSON.parse(answer.body) as { revoked?: unknown }).revoked !== true) {
        throw new Error(`logout through gateway A failed: HTTP ${answer.status} ${answer.body.slice(0, 300)}`)
      }
      if (Number.isNaN(enforcedAt)) failures++
      else samples.push(enforcedAt - t0)
    }
    const last = tokens.at(-1)
    if (last !== undefined) {
      const onA = await send(a + path, { headers: bearer(last) })
      if (onA.status !== 401) throw new Error(`gateway A still serves a token it logged out: HTTP ${onA.status}`)
    }
  } finally {
    pollAgent.destroy()
    logoutAgent.destroy()
  }
  return { samples, logoutMs, pollsPerSample: polls / Math.max(1, tokens.length), failures }
}

export const summarise = (values: number[]): { p50: number, p99: number, max: number, median: number } =>
  ({ p50: percentile(values, 50), p99: percentile(values, 99), max: Math.max(...values), median: median(values) })
