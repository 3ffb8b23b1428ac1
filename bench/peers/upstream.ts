/**
 * The upstream behind every proxy of bench/gateway.ts: node:http answering every request with
 * the same small JSON body. Run by the bench as its own process, pinned to the load
 * generator's CPU; BENCH_PORT from the environment.
 */
import { createServer } from 'node:http'

const UPSTREAM_BODY = '{"service":"bench-upstream","ok":true,"items":[1,2,3]}'

const port = Number(process.env.BENCH_PORT)
if (!Number.isInteger(port) || port <= 0) throw new Error('BENCH_PORT is not set')

const body = Buffer.from(UPSTREAM_BODY)
const server = createServer((request, response) => {
  // Drain any request body; answer once it has arrived.
  request.resume()
  request.on('end', () => {
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length })
    response.end(body)
  })
})
// Longer than the proxies' pooled connections stay idle: no reconnects during a run.
server.keepAliveTimeout = 65_000
server.listen(port, '127.0.0.1')
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { server.close(); server.closeAllConnections() })
