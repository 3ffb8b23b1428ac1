import { Writable } from 'node:stream'
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { constants, PerformanceObserver } from 'node:perf_hooks'
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

t.test('writing a line leaves nothing in the old generation (no spread: V8 puts its result there)', async (t) => {
  // A parent that takes the line and drops it: every object a write makes is garbage at once, so
  // only what V8 allocates straight into the old generation grows it: nothing here, 60-130 MB
  // with `{ ...bindings, ...line }` (200 bytes and more a line, and mark-compacts to collect it).
  const parent = { info: (_line: object) => {}, child: () => parent } as unknown as FastifyBaseLogger
  const request = new RequestLogger(parent, BINDINGS)
  const oldSpace = (): number => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')?.space_used_size ?? 0
  const write = (i: number): void => { request.info({ method: 'GET', url: '/x', statusCode: 200, ms: i / 3, route: 'api', client_id: 'c', sub: 's' }, 'request completed') }
  for (let i = 0; i < 20_000; i++) write(i) // compiled and optimised first: code and feedback live there too
  // A full collection first, so none is due during the loop; then count those that happen.
  setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
  let majors = 0
  const observer = new PerformanceObserver((list) => {
    majors += list.getEntries().filter((e) => (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR).length
  })
  observer.observe({ entryTypes: ['gc'] })
  const before = oldSpace()
  for (let i = 0; i < 300_000; i++) write(i)
  const grown = oldSpace() - before
  await new Promise((resolve) => setTimeout(resolve, 50))
  observer.disconnect()
  t.equal(majors, 0, 'no mark-compact during the loop (one would hide the growth)')
  t.ok(grown < 16 * 1024 * 1024, `old generation grew ${grown} bytes for 300,000 lines (with a spread: 60 MB and more)`)
})
