/** Access tokens for bench/gateway.ts, minted by the real issuer (client_credentials). */
import { TOKEN_REQUEST } from './load.ts'
import { keepAliveAgent, send } from './http.ts'

/**
 * `count` distinct access tokens from `tokenUrl`, `concurrency` requests in flight. Throws on
 * the first refusal (a token endpoint that refuses is a broken setup, not a result).
 */
export async function mintTokens (tokenUrl: string, count: number, concurrency = 32): Promise<string[]> {
  const agent = keepAliveAgent(concurrency)
  const tokens: string[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++
      const reply = await send(tokenUrl, { method: 'POST', headers: TOKEN_REQUEST.headers, body: TOKEN_REQUEST.body, agent })
      if (reply.status !== 200) throw new Error(`the issuer refused a token: HTTP ${reply.status} ${reply.body.slice(0, 300)}`)
      const token = (JSON.parse(reply.body) as { access_token?: unknown }).access_token
      if (typeof token !== 'string') throw new Error('the token response has no access_token')
      tokens.push(token)
    }
  }
  try {
    await Promise.all(Array.from({ length: concurrency }, worker))
  } finally {
    agent.destroy()
  }
  if (new Set(tokens).size !== count) throw new Error('the issuer minted the same token twice')
  return tokens
}

/** The same token with its signature's last characters changed: well-formed, wrongly signed. */
export function tamper (token: string): string {
  const last = token.at(-2) === 'A' ? 'B' : 'A'
  return token.slice(0, -2) + last + token.slice(-1)
}
