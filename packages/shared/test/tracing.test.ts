/**
 * The tracing switch (which OTEL_* variables turn traces on, which are refused, gRPC's
 * fallback), and what a process does without an SDK (no request hooks, Redis clients
 * untouched) and with one started from the environment (its warnings logged from the start,
 * hooks, Redis commands wrapped, spans exported over OTLP/HTTP protobuf to a real receiver; a
 * caller's trace context continued only from a trusted proxy; the request's context kept in
 * its body's stream events). The SDK is global to the process: the "off" tests run first.
 */
import t from 'tap'
import Fastify, { type FastifyBaseLogger, type FastifyRequest } from 'fastify'
import { once } from 'node:events'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import { propagation, trace } from '@opentelemetry/api'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import { ConfigError } from '../src/config-error.ts'
import { createRedisClient } from '../src/redis-connection.ts'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-node'
import type { ProxyTrust } from '../src/trust-proxy.ts'
import { isTracing, startTracing, traceRequests, tracingSettings } from '../src/tracing.ts'
import { startOtlpReceiver } from '../../../test/fixtures/otlp-receiver.ts'

const tracer = trace.getTracer('shared-test')

/** A logger like a service's, whose lines are kept. */
function capturedLog (): { log: FastifyBaseLogger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } } } })
  return { log: app.log, lines }
}

t.test('the switch: off unless an exporter or an endpoint is named', async (t) => {
  t.equal(tracingSettings({}), undefined, 'nothing set: off')
  t.equal(tracingSettings({ OTEL_SERVICE_NAME: 'edge', OTEL_RESOURCE_ATTRIBUTES: 'a=b' }), undefined, 'a name alone says nowhere to send')
  t.same(tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp' }), { protocol: 'http/json', endpoint: 'http://localhost:4318/v1/traces' }, 'otlp: the default endpoint, JSON')
  t.same(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://user:pass@collector.example:4318/otlp' }), { protocol: 'http/json', endpoint: 'https://collector.example:4318/otlp/v1/traces' },
    'an endpoint switches it on, /v1/traces added as the exporter does; the log line shows no credentials')
  t.same(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:9999/traces' }), { protocol: 'http/json', endpoint: 'http://b:9999/traces' }, 'the traces endpoint is used as is')
  t.same(tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' })?.protocol, 'http/protobuf')
  t.same(tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }), { protocol: 'http/json', endpoint: 'http://localhost:4318/v1/traces' }, 'the traces protocol wins')
  t.equal(tracingSettings({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318' }), undefined, 'none: off, whatever else is set')
  t.equal(tracingSettings({ OTEL_SDK_DISABLED: 'TRUE', OTEL_TRACES_EXPORTER: 'otlp' }), undefined, 'OTEL_SDK_DISABLED=true: off')
  t.same(tracingSettings({ OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp' })?.protocol, 'http/json')
  t.equal(tracingSettings({ OTEL_TRACES_EXPORTER: ' ', OTEL_EXPORTER_OTLP_ENDPOINT: '' }), undefined, 'empty values count as unset')

  const refused = (env: NodeJS.ProcessEnv, problem: RegExp): void => {
    let error: unknown
    try { tracingSettings(env) } catch (err) { error = err }
    t.ok(error instanceof ConfigError, `refused at start: ${JSON.stringify(env)}`)
    t.match((error as Error | undefined)?.message, problem)
  }
  refused({ OTEL_TRACES_EXPORTER: 'zipkin' }, /^environment OTEL_TRACES_EXPORTER is "zipkin"/)
  refused({ OTEL_TRACES_EXPORTER: 'otlp,console' }, /OTEL_TRACES_EXPORTER is "console"/)
  refused({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/thrift' }, /OTEL_EXPORTER_OTLP_PROTOCOL is "http\/thrift": Gatehouse sends OTLP over HTTP/)
  refused({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /OTEL_EXPORTER_OTLP_ENDPOINT must be an http:\/\/ or https:\/\/ URL/)
  refused({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'no url' }, /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be/)
})

t.test('grpc: tracing on all the same, over http/protobuf, and why in one warning', async (t) => {
  const noEndpoint = tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })
  t.match(noEndpoint, { protocol: 'http/protobuf', endpoint: 'http://localhost:4318/v1/traces' }, 'not refused: http/protobuf to the OTLP/HTTP default')
  t.match(noEndpoint?.fallback, /^OTEL_EXPORTER_OTLP_PROTOCOL is "grpc", which Gatehouse does not send: traces go over http\/protobuf to http:\/\/localhost:4318\/v1\/traces \(no endpoint is set: the OTLP\/HTTP default port 4318, where gRPC's default is 4317\)$/)
  const grpcPort = tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' })
  t.match(grpcPort, { protocol: 'http/protobuf', endpoint: 'http://collector:4317/v1/traces' }, 'the endpoint set is kept')
  t.match(grpcPort?.fallback, /^OTEL_EXPORTER_OTLP_TRACES_PROTOCOL is "grpc".* to http:\/\/collector:4317\/v1\/traces \(port 4317 is where a collector usually takes gRPC: its OTLP\/HTTP receiver is usually on 4318\)$/, 'the variable that said grpc; 4317 pointed out')
  const httpPort = tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })
  t.match(httpPort?.fallback, /to https:\/\/collector:4318\/v1\/traces$/, 'nothing more to say of another port')
  t.equal(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' })?.fallback, undefined, 'no fallback, no warning')
})

t.test('without an SDK: no SDK loaded, no hooks, Redis clients untouched', async (t) => {
  t.equal(isTracing(), false)
  const { log, lines } = capturedLog()
  t.equal(await startTracing({ name: 'test', version: '0' }, log), undefined, 'no OTEL_* variable: no SDK')
  t.same(lines, [], 'nothing said')
  t.equal(isTracing(), false, 'startTracing registered nothing')

  const app = Fastify()
  traceRequests(app, tracer, { trust: false })
  app.get('/', async (request) => ({ span: request.traceSpan, active: trace.getActiveSpan() !== undefined }))
  t.same((await app.inject('/')).json(), { span: null, active: false })
  await app.close()

  const redis = createRedisClient({ url: `redis://127.0.0.1:${await freePort()}`, options: { lazyConnect: true } })
  t.equal((redis as Redis).sendCommand, Redis.prototype.sendCommand, 'no wrapper around the commands')
  redis.disconnect()
})

t.test('with the SDK started from the environment: spans reach an OTLP/HTTP protobuf receiver', async (t) => {
  const receiver = await startOtlpReceiver(t)
  // The SDK reads the process environment itself, as in a service. A timeout it cannot use is
  // warned about as the exporter is built.
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_SERVICE_NAME: 'shared-tracing-test', OTEL_EXPORTER_OTLP_TIMEOUT: 'soon' }
  Object.assign(process.env, env)
  t.teardown(() => { for (const name of Object.keys(env)) Reflect.deleteProperty(process.env, name) })
  const { log, lines } = capturedLog()
  const tracing = await startTracing({ name: 'test', version: '0' }, log)
  t.ok(tracing !== undefined)
  t.equal(isTracing(), true)
  const said = lines.map((l) => `${String(l.level)} ${String(l.msg)}`)
  t.match(said[0], /^40 tracing: Unknown value 'soon' for OTEL_EXPORTER_OTLP_TIMEOUT/, 'the exporter\'s warning, while it was built, is logged')
  t.equal(said.at(-1), '30 tracing on: spans are exported with OTLP', 'then the line saying tracing is on')
  t.match(lines.at(-1), { protocol: 'http/protobuf', endpoint: `${receiver.url}/v1/traces`, service: 'shared-tracing-test' })

  const app = Fastify()
  traceRequests(app, tracer, { trust: false })
  let headersIn: () => void = () => {}
  const received = new Promise<void>((resolve) => { headersIn = resolve })
  app.addHook('onRequest', (request, _reply, done) => { if (request.method === 'POST') headersIn(); done() })
  const isActive = (request: FastifyRequest): boolean => request.traceSpan !== null && trace.getActiveSpan() === request.traceSpan
  app.get('/things/:id', async (request) => ({ isActive: isActive(request) }))
  app.post('/things', async (request) => ({ isActive: isActive(request), body: request.body }))
  // For a client that leaves before the answer.
  let hangingIn: () => void = () => {}
  let leftIn: () => void = () => {}
  const hanging = new Promise<void>((resolve) => { hangingIn = resolve })
  const left = new Promise<void>((resolve) => { leftIn = resolve })
  app.get('/hang', async (_request, reply) => {
    hangingIn()
    await once(reply.raw, 'close')
    leftIn()
    return null
  })
  t.same((await app.inject('/things/1')).json(), { isActive: true }, 'the request span is active in the handler')
  // A body that arrives after the hooks ran: the handler still runs in the request's context.
  await app.listen({ host: '127.0.0.1', port: 0 })
  const answer = new Promise<string>((resolve, reject) => {
    const req = httpRequest(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/things`, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() }).on('end', () => { resolve(body) })
    }).on('error', reject)
    req.flushHeaders()
    received.then(() => { setImmediate(() => { req.end('{"a":1}') }) }, reject)
  })
  t.same(JSON.parse(await answer), { isActive: true, body: { a: 1 } }, 'also after a body that came later')
  // A client that leaves before the answer: the span still ends, marked aborted.
  const abandoned = httpRequest(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/hang`).on('error', () => {})
  abandoned.end()
  await hanging
  abandoned.destroy()
  await left
  await app.close()

  const redis = createRedisClient({ url: `redis://127.0.0.1:${await freePort()}`, options: { lazyConnect: true } })
  t.not((redis as Redis).sendCommand, Redis.prototype.sendCommand, 'commands are wrapped')
  redis.disconnect()

  tracer.startSpan('a-span-for-the-receiver').end()
  await tracing?.shutdown()
  const posts = receiver.requests.filter((r) => r.method === 'POST' && r.path === '/v1/traces')
  t.ok(posts.length > 0, 'the buffered spans were sent at shutdown')
  t.ok(posts.every((r) => r.contentType === 'application/x-protobuf'), 'as protobuf')
  const bytes = Buffer.concat(posts.map((r) => r.body)).toString('latin1')
  t.ok(bytes.includes('a-span-for-the-receiver'), 'the span is in the body')
  t.ok(bytes.includes('GET /things/:id'), 'and the request span, named after its route')
  t.ok(bytes.includes('shared-tracing-test'), 'with OTEL_SERVICE_NAME as service.name')
  t.ok(bytes.includes('GET /hang') && bytes.includes('aborted'), 'the abandoned request\'s span, marked aborted')
})

t.test('a caller\'s trace context and baggage are continued only from a trusted proxy', async (t) => {
  const traceId = 'a'.repeat(32)
  const callerSpan = 'b'.repeat(16)
  const headers = { traceparent: `00-${traceId}-${callerSpan}-01`, tracestate: 'vendor=caller', baggage: 'tenant=chosen-by-caller' }
  /** What the handler of an app with `trust` sees of a request from 127.0.0.1 (inject's peer). */
  const seen = async (trust: ProxyTrust): Promise<Record<string, unknown>> => {
    const app = Fastify()
    traceRequests(app, tracer, { trust })
    app.get('/', async (request) => {
      const span = request.traceSpan as unknown as ReadableSpan
      return {
        traceId: span.spanContext().traceId,
        parent: span.parentSpanContext?.spanId ?? null,
        tracestate: span.spanContext().traceState?.serialize() ?? null,
        baggage: propagation.getActiveBaggage()?.getEntry('tenant')?.value ?? null
      }
    })
    const answer = (await app.inject({ url: '/', headers })).json() as Record<string, unknown>
    await app.close()
    return answer
  }
  t.same(await seen((address) => address === '127.0.0.1'), { traceId, parent: callerSpan, tracestate: 'vendor=caller', baggage: 'chosen-by-caller' }, 'from a trusted proxy: continued, baggage kept')
  for (const [label, trust] of [['no trusted proxy', false], ['a peer that is not one of them', (address: string) => address === '10.0.0.5']] as const) {
    const untrusted = await seen(trust)
    t.not(untrusted.traceId, traceId, `${label}: a trace of its own`)
    t.match(untrusted, { parent: null, tracestate: null, baggage: null }, `${label}: a root span, no tracestate, no baggage`)
  }
})

t.test('a body that arrives after the headers: spans started in its stream events are children of the request span', async (t) => {
  const app = Fastify()
  traceRequests(app, tracer, { trust: false })
  let headersIn: () => void = () => {}
  const headersArrived = new Promise<void>((resolve) => { headersIn = resolve })
  app.addHook('onRequest', (_request, _reply, done) => { headersIn(); done() })
  // A parser that works on each chunk as it comes, as a streaming body parser would.
  app.addContentTypeParser('application/x-chunks', (request, payload, done) => {
    const parents: Array<string | undefined> = []
    payload.on('data', () => {
      const span = tracer.startSpan('read chunk') as unknown as ReadableSpan
      parents.push(span.parentSpanContext?.spanId)
      ;(span as unknown as { end: () => void }).end()
    })
    payload.on('end', () => { done(null, { parents, requestSpan: request.traceSpan?.spanContext().spanId }) })
  })
  app.post('/upload', async (request) => request.body)
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => { await app.close() })
  const answer = await new Promise<string>((resolve, reject) => {
    const req = httpRequest(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/upload`, { method: 'POST', headers: { 'content-type': 'application/x-chunks', 'transfer-encoding': 'chunked' } }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() }).on('end', () => { resolve(body) })
    }).on('error', reject)
    req.flushHeaders()
    // The headers first; the body in later packets, once the request's hooks have run.
    headersArrived.then(() => {
      setTimeout(() => {
        req.write('first')
        setTimeout(() => { req.end('second') }, 20)
      }, 20)
    }, reject)
  })
  const { parents, requestSpan } = JSON.parse(answer) as { parents: string[], requestSpan: string }
  t.ok(parents.length >= 2, `${parents.length} chunks read`)
  t.same(parents, parents.map(() => requestSpan), 'every chunk\'s span is a child of the request span')
})
