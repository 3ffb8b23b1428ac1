import { Writable } from 'node:stream'
import Fastify, { type FastifyBaseLogger } from 'fastify'
import t from 'tap'
import { loggerOptions } from '../src/logging.ts'
import { RequestLogger } from '../src/request-logger.ts'

/** A pino logger (Fastify's, with the product's options) whose lines are kept, `time` left out. */
function capture (level = 'info'): { log: FastifyBaseLogger, lines: () => Array<Record<string, unknown>>, raw: string[], children: () => number } {
  const raw: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _encoding, done) { raw.push(chunk.toString()); done() } })
  const app = Fastify({ logger: { ...(loggerOptions(level) as object), stream } })
  const log = app.log
  let made = 0
  const child = log.child.bind(log)
  log.child = (...args: Parameters<typeof child>) => { made++; return child(...args) }
  return {
    log,
    raw,
    lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>),
    children: () => made
  }
}

const BINDINGS = { reqId: 'req-1', ip: '203.0.113.9' }

/** Runs the same calls on a pino child and on a RequestLogger: the lines they write. */
function both (calls: (log: FastifyBaseLogger) => void, options: object = {}, level = 'info'): { child: string[], request: string[] } {
  const viaChild = capture(level)
  calls(viaChild.log.child(BINDINGS, options))
  const viaRequest = capture(level)
  calls(new RequestLogger(viaRequest.log, BINDINGS, options))
  const strip = (line: string): string => line.replace(/"time":\d+,/, '')
  return { child: viaChild.raw.map(strip), request: viaRequest.raw.map(strip) }
}

t.test('a request logger writes byte for byte what a pino child with the same bindings writes', async (t) => {
  const error = new Error('boom')
  const { child, request } = both((log) => {
    log.info({ method: 'GET', url: '/x', statusCode: 200, ms: 1.25 }, 'request completed')
    log.warn({ route: 'api', nested: { a: [1, 2] } }, 'cut %s at %d', 'short', 42)
    log.error({ err: error, route: 'api' }, 'request errored')
    log.info({ req: { id: 'r', method: 'GET', url: '/cb?code=secret', headers: { authorization: 'Bearer t' } } }, 'with a request')
    log.info('a message alone')
    log.info('formatted %s', 'message')
    log.error(error)
    log.error(error, 'an error and a message')
    log.info({ plain: true })
    log.debug({ below: 'the level' }, 'not written')
    log.trace('nor this')
    log.fatal({ last: 'words' }, 'fatal')
  })
  t.equal(request.length, 10)
  t.same(request, child)
  t.notOk(request.join('\n').includes('secret'), 'the request serializer still applies')
})

t.test('the child of a request logger, and one made with options, write what pino\'s would', async (t) => {
  const nested = both((log) => {
    const sub = log.child({ listener: 'admin' })
    sub.info({ a: 1 }, 'from the child')
    sub.warn('and a message')
  })
  t.equal(nested.request.length, 2)
  t.same(nested.request, nested.child)
  // A route's own log level: the request's lines follow it, not the parent's.
  const levelled = both((log) => {
    log.debug({ a: 1 }, 'written at debug')
    log.trace({ a: 2 }, 'not at trace')
    log.info({ a: 3 })
  }, { level: 'debug' })
  t.equal(levelled.request.length, 2)
  t.same(levelled.request, levelled.child)
})

t.test('a pino child is made only when a line needs one, once', async (t) => {
  const { log, children, lines } = capture()
  const request = new RequestLogger(log, BINDINGS)
  request.info({ a: 1 }, 'plain object')
  request.warn({ b: 2 })
  request.debug({ c: 3 })
  t.equal(children(), 0, 'plain objects: the parent writes them')
  t.equal(request.level, 'info', 'the level is the parent\'s')
  request.info('a message alone')
  request.error(new Error('e'))
  request.info({ d: 4 })
  t.equal(children(), 1, 'one child, for every line after the first that needed it')
  t.same(lines().map((l) => [l.reqId, l.ip]), Array(5).fill(['req-1', '203.0.113.9']), 'every line has the bindings')
  const levelled = capture()
  t.equal(new RequestLogger(levelled.log, BINDINGS, { level: 'warn' }).level, 'warn', 'a route\'s level')
})

t.test('a field named like a binding is written once, with the line\'s value', async (t) => {
  const { log, raw } = capture()
  new RequestLogger(log, BINDINGS).info({ ip: '198.51.100.7', a: 1 }, 'x')
  t.equal(raw[0]?.match(/"ip":/g)?.length, 1)
  t.match(raw[0], /"reqId":"req-1","ip":"198\.51\.100\.7","a":1/)
})
