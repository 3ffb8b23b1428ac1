/**
 * Tracing in real processes (docs/operations.md, Tracing). The issuer and a gateway started
 * with OTEL_* variables pointing at an OTLP/HTTP receiver in this test send it their spans
 * (OTLP/JSON), under their service names, and one trace runs from the caller (a trusted
 * proxy: both list loopback in `trustProxy`) through the gateway to the upstream, which gets
 * the gateway's `traceparent`; the gateway's JWKS fetch and the issuer's answer share a trace
 * too. A gateway started without OTEL_* variables loads no SDK: it logs nothing about tracing
 * and hands the caller's `traceparent` to the upstream untouched. `grpc` starts all the same,
 * over http/protobuf, with one warning; an exporter that cannot be honoured stops the start
 * with one line.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { startOtlpReceiver, type ReceivedSpan } from './fixtures/otlp-receiver.ts'
import { join } from 'node:path'
import { bearer, DEMO, demoGatewayConfig, freePort, getJson, ROOT, runNode, serviceToken, startGateway, startStack, waitFor, writeConfigFile, type Echo } from './fixtures/processes.ts'

const receiver = await startOtlpReceiver(t)
// A short batch delay: spans arrive within a tenth of a second instead of five.
const OTEL = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' }
// The test's requests come from loopback, a trusted proxy here; the gateway is one to the issuer.
const trustLoopback = (config: { trustProxy: boolean | readonly string[] }): void => { config.trustProxy = ['loopback'] }
const stack = await startStack(t, {
  issuer: { env: OTEL, logLevel: 'info', configure: trustLoopback },
  gateways: [{ env: { ...OTEL, OTEL_SERVICE_NAME: 'edge-gateway' }, logLevel: 'info', configure: trustLoopback }]
})
const gateway = stack.gateways[0]!
const token = await serviceToken(stack.issuer)

const hex = (bytes: number): string => randomBytes(bytes).toString('hex')
const SERVER = 2
const CLIENT = 3

/** The received spans `pick` returns once it returns some; waits for the exporters' batches. */
async function received (what: string, pick: (spans: ReceivedSpan[]) => ReceivedSpan[] | undefined): Promise<ReceivedSpan[]> {
  return await waitFor(what, () => pick(receiver.spans()))
}

t.test('both services export their spans; one trace from the caller through the gateway to the upstream', async (t) => {
  const traceId = hex(16)
  const callerSpan = hex(8)
  const res = await getJson<Echo>(`${gateway.url}/api/things`, { ...bearer(token), traceparent: `00-${traceId}-${callerSpan}-01` })
  t.equal(res.status, 200)
  const [version, upstreamTrace, upstreamParent] = String(res.body.headers.traceparent).split('-')
  t.equal(version, '00')
  t.equal(upstreamTrace, traceId, 'the upstream is in the caller\'s trace')

  const spans = await received('the gateway\'s request and upstream spans', (all) => {
    const inTrace = all.filter((s) => s.traceId === traceId)
    return inTrace.some((s) => s.name === 'GET api') && inTrace.some((s) => s.name === 'upstream GET') ? inTrace : undefined
  })
  const request = spans.find((s) => s.name === 'GET api')!
  const call = spans.find((s) => s.name === 'upstream GET')!
  t.equal(request.service, 'edge-gateway', 'OTEL_SERVICE_NAME names the gateway')
  t.equal(request.kind, SERVER)
  t.equal(request.parentSpanId, callerSpan, 'the caller\'s span is the parent')
  t.match(request.attributes, { 'gatehouse.route': 'api', 'gatehouse.outcome': 'ok', 'gatehouse.client_id': DEMO.service.id, 'http.response.status_code': 200 })
  t.equal(call.kind, CLIENT)
  t.equal(call.parentSpanId, request.spanId)
  t.equal(upstreamParent, call.spanId, 'the upstream\'s parent is the gateway\'s call span')
  const verify = spans.find((s) => s.name === 'verify token')
  t.equal(verify?.parentSpanId, request.spanId, 'the token check is in the trace too')
})

t.test('the issuer\'s spans: its own service name, the token endpoint, the grant, the signature', async (t) => {
  // The test's own token request (the gateway asks for one of its own too, as demo-gateway).
  const isOurs = (s: ReceivedSpan): boolean => s.service === 'gatehouse-issuer' && s.name === 'POST /oauth2/token' && s.attributes['gatehouse.client_id'] === DEMO.service.id
  const spans = await received('the issuer\'s token endpoint span', (all) => all.some(isOurs) ? all : undefined)
  const endpoint = spans.find(isOurs)!
  t.match(endpoint.attributes, { 'http.route': '/oauth2/token', 'gatehouse.client_id': DEMO.service.id, 'http.response.status_code': 200 })
  const inTrace = await received('the grant and its signature', (all) => {
    const found = all.filter((s) => s.traceId === endpoint.traceId)
    return found.some((s) => s.name === 'grant client_credentials') && found.some((s) => s.name === 'sign at+jwt') ? found : undefined
  })
  const grant = inTrace.find((s) => s.name === 'grant client_credentials')!
  t.equal(grant.parentSpanId, endpoint.spanId)
  t.equal(inTrace.find((s) => s.name === 'sign at+jwt')?.parentSpanId, grant.spanId)

  // The gateway fetched the JWKS at start; the issuer continued that trace.
  const fetches = await received('the gateway\'s JWKS fetch and the issuer\'s answer', (all) => {
    const fetch = all.find((s) => s.service === 'edge-gateway' && s.name === 'fetch JWKS')
    const answer = fetch === undefined ? undefined : all.find((s) => s.service === 'gatehouse-issuer' && s.parentSpanId === fetch.spanId && s.name === 'GET /.well-known/jwks.json')
    return fetch !== undefined && answer !== undefined ? [fetch, answer] : undefined
  })
  t.equal(fetches[1]?.traceId, fetches[0]?.traceId)
  t.equal(fetches[1]?.kind, SERVER)

  t.match(stack.issuer.output, /"msg":"tracing on: spans are exported with OTLP"/)
  t.match(gateway.output, new RegExp(`"endpoint":"${receiver.url}/v1/traces".*"service":"edge-gateway"`))
})

t.test('what was exported carries no token and no secret', async (t) => {
  // Everything received, raw, not just the parsed attributes.
  const bodies = receiver.requests.map((r) => r.body.toString('utf8')).join('\n')
  t.ok(bodies.length > 0)
  for (const secret of [token, DEMO.service.secret, DEMO.gateway.secret]) t.notOk(bodies.includes(secret), `${secret.slice(0, 12)}... is not in any export`)
  t.ok(receiver.requests.every((r) => r.path === '/v1/traces' && r.contentType.startsWith('application/json')), 'OTLP/JSON to /v1/traces')
})

t.test('a gateway without OTEL_* variables: no SDK, nothing said, the caller\'s traceparent untouched', async (t) => {
  const plain = await startGateway(t, stack.dir, stack.issuer, stack.resourceServer, { name: 'plain-gateway', logLevel: 'info' })
  const traceparent = `00-${hex(16)}-${hex(8)}-01`
  const res = await getJson<Echo>(`${plain.url}/api/things`, { ...bearer(token), traceparent })
  t.equal(res.status, 200)
  t.equal(res.body.headers.traceparent, traceparent, 'passed through as it came: no span of the gateway\'s in between')
  await plain.waitForOutput(/"statusCode":200/)
  // A stop would flush an SDK's batch: there is none to flush.
  await plain.stop()
  t.notMatch(plain.output, /"msg":"tracing|opentelemetry|OTLP/i, 'it logs nothing about tracing')
  t.notOk(receiver.spans().some((s) => s.traceId === traceparent.split('-')[1]), 'the receiver got nothing of that request')
})

t.test('OTEL_EXPORTER_OTLP_PROTOCOL=grpc: the gateway starts, traces over http/protobuf, one warning', async (t) => {
  const grpc = await startGateway(t, stack.dir, stack.issuer, stack.resourceServer, {
    name: 'grpc-gateway',
    logLevel: 'info',
    env: { ...OTEL, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_SERVICE_NAME: 'grpc-gateway' }
  })
  const res = await getJson<Echo>(`${grpc.url}/api/things`, bearer(token))
  t.equal(res.status, 200)
  const warnings = grpc.output.split('\n').filter((line) => line.includes('is \\"grpc\\"'))
  t.equal(warnings.length, 1, 'one line about it')
  t.match(warnings[0], /"level":40.*"msg":"tracing: OTEL_EXPORTER_OTLP_PROTOCOL is \\"grpc\\", which Gatehouse does not send: traces go over http\/protobuf to /)
  t.match(grpc.output, /"protocol":"http\/protobuf".*"msg":"tracing on: spans are exported with OTLP"/)
  await waitFor('protobuf spans from the grpc gateway', () => receiver.requests.some((r) => r.contentType === 'application/x-protobuf' && r.body.includes('grpc-gateway')) ? true : undefined)
  t.pass('its spans arrive, as protobuf')
})

t.test('an exporter that cannot be honoured: one line at start, exit 1', async (t) => {
  const config = demoGatewayConfig()
  config.listen = { host: '127.0.0.1', port: await freePort() }
  const file = join(t.testdir(), 'gateway.yaml')
  writeConfigFile(file, config)
  const gatewayBin = join(ROOT, 'packages/gateway/bin/gatehouse-gateway.js')
  for (const [env, problem] of [
    [{ OTEL_TRACES_EXPORTER: 'zipkin' }, /^environment OTEL_TRACES_EXPORTER is "zipkin"/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/thrift' }, /^environment OTEL_EXPORTER_OTLP_PROTOCOL is "http\/thrift"/]
  ] as const) {
    const { code, stderr } = await runNode([gatewayBin, '--config', file], 30_000, env)
    t.equal(code, 1, `${JSON.stringify(env)}: exit 1`)
    t.match(stderr.trim(), problem)
    t.equal(stderr.trim().split('\n').length, 1, 'one line')
  }
})
