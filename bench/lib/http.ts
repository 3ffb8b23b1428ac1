/**
 * A small HTTP client on node:http with keep-alive: cheaper per request than fetch, so the
 * token minting and the revocation polling of bench/gateway.ts do not load their CPU much.
 */
import { Agent, request as httpRequest } from 'node:http'

export interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

export interface RequestOptions {
  method?: string
  headers?: Record<string, string>
  body?: string
  agent?: Agent
  /** Milliseconds; default 10 000 */
  timeout?: number
}

/** A keep-alive agent holding at most `sockets` connections. */
export function keepAliveAgent (sockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets })
}

export async function send (url: string, options: RequestOptions = {}): Promise<Reply> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method: options.method ?? 'GET',
      headers: options.body === undefined ? options.headers : { ...options.headers, 'content-length': String(Buffer.byteLength(options.body)) },
      ...(options.agent === undefined ? {} : { agent: options.agent }),
      timeout: options.timeout ?? 10_000
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${options.method ?? 'GET'} ${url} timed out`)))
    req.on('error', reject)
    req.end(options.body)
  })
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
