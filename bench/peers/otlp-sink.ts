/**
 * Where the traced gateway of bench/gateway.ts sends its spans: an OTLP/HTTP receiver that
 * keeps nothing. `POST /v1/traces` answers 200 as test/fixtures/otlp-receiver.ts does (`{}` to
 * OTLP/JSON, the exporter warns on an empty JSON body; an empty body to protobuf, an empty
 * ExportTraceServiceResponse) and counts the exports, their bytes and, for OTLP/JSON, their
 * spans. `GET /stats` gives the counts. Run pinned to the load CPU; BENCH_PORT from the environment.
 */
import { createServer } from 'node:http'

/** What `GET /stats` answers. */
export interface SinkStats {
  /** Export requests answered 200 */
  requests: number
  /** Their bodies, bytes (as sent: compressed if the exporter compresses) */
  bytes: number
  /** Spans in the OTLP/JSON bodies (protobuf bodies are not decoded) */
  spans: number
}

// Every span of OTLP/JSON has exactly one "spanId" key ("parentSpanId" differs in case).
const SPAN_KEY = Buffer.from('"spanId"')

function countSpans (body: Buffer): number {
  let n = 0
  for (let at = body.indexOf(SPAN_KEY); at !== -1; at = body.indexOf(SPAN_KEY, at + SPAN_KEY.length)) n++
  return n
}

const port = Number(process.env.BENCH_PORT)
if (!Number.isInteger(port) || port <= 0) throw new Error('BENCH_PORT is not set')

const stats: SinkStats = { requests: 0, bytes: 0, spans: 0 }
const server = createServer((request, response) => {
  const chunks: Buffer[] = []
  request.on('data', (chunk: Buffer) => chunks.push(chunk))
  request.on('end', () => {
    if (request.method === 'GET' && request.url === '/healthz') {
      response.writeHead(200).end()
      return
    }
    if (request.method === 'GET' && request.url === '/stats') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats))
      return
    }
    if (request.method !== 'POST' || request.url !== '/v1/traces') {
      response.writeHead(404).end()
      return
    }
    const body = Buffer.concat(chunks)
    const contentType = request.headers['content-type'] ?? ''
    const isJson = contentType.startsWith('application/json')
    stats.requests++
    stats.bytes += body.length
    if (isJson && request.headers['content-encoding'] === undefined) stats.spans += countSpans(body)
    response.writeHead(200, { 'content-type': isJson ? 'application/json' : 'application/x-protobuf' }).end(isJson ? '{}' : '')
  })
})
server.keepAliveTimeout = 65_000
server.listen(port, '127.0.0.1')
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { server.close(); server.closeAllConnections() })
