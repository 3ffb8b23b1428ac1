/**
 * Tracing for the issuer and the gateway, through the OpenTelemetry API alone
 * (docs/operations.md, Tracing). Without an SDK the API records nothing; on top of that, every
 * span here is started only when {@link isTracing} says an SDK is registered, so a service
 * without one builds no span, no context and no attribute object per request.
 *
 * The SDK itself is in `tracing-sdk.ts`, imported by {@link startTracing} only when the
 * `OTEL_*` variables ask for traces ({@link tracingSettings}).
 *
 * Attributes never carry a token, a subject, a username, an e-mail address, a secret, a path
 * or a query string: routes, client ids, grant types, key ids, status codes, outcomes.
 */
import { context, propagation, ProxyTracerProvider, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Command } from 'ioredis'
import { ConfigError } from './config-error.ts'
import type { RedisClient } from './redis-connection.ts'
import { isFromTrustedProxy, type ProxyTrust } from './trust-proxy.ts'

/** Span attribute names of our own (the rest are OpenTelemetry's semantic conventions). */
export const ATTR = {
  route: 'gatehouse.route',
  clientId: 'gatehouse.client_id',
  grantType: 'gatehouse.grant_type',
  /** `ok`, or why not: an OAuth error code (issuer), an auth failure reason (gateway). */
  outcome: 'gatehouse.outcome',
  errorType: 'error.type'
} as const

declare module 'fastify' {
  interface FastifyRequest {
    /** The span of this request while tracing (traceRequests), else null. */
    traceSpan: Span | null
  }
}

const NO_SDK = new ProxyTracerProvider().getDelegate()

/** True once an OpenTelemetry SDK registered its tracer provider (startTracing, or a test's). */
export function isTracing (): boolean {
  const provider = trace.getTracerProvider()
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NO_SDK
}

/**
 * Marks `span` failed by `err`: `error.type` is the error's code (`invalid_grant`, `ECONNREFUSED`)
 * or class name, never its message (which may quote input). The status is ERROR unless the
 * error is the client's (an HTTP status under 500): a refused grant is an answer, not a fault.
 */
export function failSpan (span: Span, err: unknown): void {
  const { code, name, status, statusCode } = (err ?? {}) as { code?: unknown, name?: unknown, status?: unknown, statusCode?: unknown }
  span.setAttribute(ATTR.errorType, typeof code === 'string' ? code : typeof name === 'string' ? name : 'error')
  const httpStatus = typeof status === 'number' ? status : typeof statusCode === 'number' ? statusCode : 500
  if (httpStatus >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
}

/** Runs `fn` in a new active span, ended when it settles. Call it only when {@link isTracing}. */
export async function inSpan<T> (tracer: Tracer, name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return await tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span)
    } catch (err) {
      failSpan(span, err)
      throw err
    } finally {
      span.end()
    }
  })
}

/** {@link inSpan} for synchronous work (signing). */
export function inSpanSync<T> (tracer: Tracer, name: string, attributes: Attributes, fn: () => T): T {
  const span = tracer.startSpan(name, { attributes })
  try {
    return fn()
  } catch (err) {
    failSpan(span, err)
    throw err
  } finally {
    span.end()
  }
}

/** What {@link traceRequests} needs of the app. */
export interface RequestTracing {
  /** The app's `trustProxy` (`proxyTrust(config.trustProxy)`): only these peers' trace context is continued. */
  trust: ProxyTrust
  /** Adds what only the app knows (the issuer's client) when the span ends. */
  describe?: (span: Span, request: FastifyRequest) => void
}

/**
 * A SERVER span per request, named `METHOD route` (the route's URL pattern); active through the
 * hooks, the body's stream events and the handler, so whatever they do (grants, token checks,
 * Redis, the upstream call) nests under it. Ends when the response closes, with
 * `http.response.status_code`; ERROR for a 5xx.
 *
 * The incoming W3C `traceparent`, `tracestate` and `baggage` are continued only from a trusted
 * proxy, as its X-Request-Id is (requestIdentity): anyone else's span is a new root, so a
 * caller can neither pick the trace its requests land in nor turn sampling off or on for them,
 * nor hand baggage to what the request calls.
 *
 * Decorates `request.traceSpan` (null while not tracing). Hooks are added only when an SDK is
 * registered at build time: without one, requests pay nothing.
 */
export function traceRequests (app: FastifyInstance, tracer: Tracer, { trust, describe }: RequestTracing): void {
  app.decorateRequest('traceSpan', null)
  if (!isTracing()) return
  app.addHook('onRequest', (request, reply, done) => {
    const parent = isFromTrustedProxy(trust, request.raw) ? propagation.extract(ROOT_CONTEXT, request.headers) : ROOT_CONTEXT
    const route = request.routeOptions.url
    const attributes: Attributes = { 'http.request.method': request.method }
    if (route !== undefined) attributes['http.route'] = route
    const span = tracer.startSpan(route === undefined ? request.method : `${request.method} ${route}`, { kind: SpanKind.SERVER, attributes }, parent)
    request.traceSpan = span
    reply.raw.once('close', () => { endRequestSpan(span, request, reply, describe) })
    const active = trace.setSpan(parent, span)
    // A body that arrives after the headers comes in events of the connection, outside this
    // context: listeners on the request stream (a body parser's) are bound to it all the same.
    context.bind(active, request.raw)
    // The rest of the request (hooks, handler) runs in this context, so spans nest under it.
    context.with(active, done)
  })
}

function endRequestSpan (span: Span, request: FastifyRequest, reply: FastifyReply, describe: ((span: Span, request: FastifyRequest) => void) | undefined): void {
  const status = reply.raw.statusCode
  span.setAttribute('http.response.status_code', status)
  // Closed before the whole answer was written: the client went away (HTTP/1.1 and HTTP/2 alike).
  if (!reply.raw.writableEnded) span.setAttribute(ATTR.errorType, 'aborted')
  if (status >= 500) {
    span.setAttribute(ATTR.errorType, String(status))
    span.setStatus({ code: SpanStatusCode.ERROR })
  }
  describe?.(span, request)
  span.end()
}

const redisTracer = trace.getTracer('@gatehouse/shared/redis')

/**
 * A CLIENT span per Redis command sent within a traced operation (`redis GETDEL`,
 * `db.operation.name`; never a key or an argument). Background work (the revocation mirror's
 * subscriber, key reloads) makes no root span per command. A client made while no SDK is
 * registered is returned untouched.
 */
export function traceRedisCommands<C extends RedisClient> (client: C): C {
  if (!isTracing()) return client
  const send = client.sendCommand.bind(client) as (command: Command, ...rest: unknown[]) => unknown
  const traced = (command: Command, ...rest: unknown[]): unknown => {
    const parent = context.active()
    if (trace.getSpan(parent) === undefined) return send(command, ...rest)
    const operation = command.name.toUpperCase()
    const span = redisTracer.startSpan(`redis ${operation}`, { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'redis', 'db.operation.name': operation } }, parent)
    command.promise.then(() => { span.end() }, (err: unknown) => { failSpan(span, err); span.end() })
    return send(command, ...rest)
  }
  ;(client as { sendCommand: unknown }).sendCommand = traced
  return client
}

/** How the exporter sends (OTLP over HTTP). */
export type OtlpProtocol = 'http/json' | 'http/protobuf'

/** What the environment asked for, when it asked for traces. */
export interface TracingSettings {
  protocol: OtlpProtocol
  /** Where spans go, for the start-up log line: scheme, host, port and path only. */
  endpoint: string
  /** Why what was asked for is not what is done (gRPC: OTLP/HTTP instead), for one warn line at start. */
  fallback?: string
}

/** The OTLP/HTTP default (OTLP/gRPC's is port 4317). */
const DEFAULT_ENDPOINT = 'http://localhost:4318/v1/traces'

function variable (env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim()
  return value === undefined || value === '' ? undefined : value
}

function envProblem (name: string, message: string): ConfigError {
  return new ConfigError([{ file: 'environment', line: 0, column: 0, path: name, message }])
}

/** Where the exporter sends (as it computes it), without credentials or query: they never reach a log line. */
function describeEndpoint (env: NodeJS.ProcessEnv): URL {
  const traces = variable(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')
  const base = variable(env, 'OTEL_EXPORTER_OTLP_ENDPOINT')
  const raw = traces ?? (base === undefined ? DEFAULT_ENDPOINT : `${base.endsWith('/') ? base : `${base}/`}v1/traces`)
  let url: URL | undefined
  try {
    url = new URL(raw)
  } catch {}
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw envProblem(traces === undefined ? 'OTEL_EXPORTER_OTLP_ENDPOINT' : 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'must be an http:// or https:// URL')
  }
  return new URL(`${url.protocol}//${url.host}${url.pathname}`)
}

/**
 * What is done for `grpc`, which Gatehouse does not send: http/protobuf (the closest, and the
 * specification's default) to the same endpoint, or to the OTLP/HTTP default port 4318 when
 * none is set, said so, since a collector takes gRPC on 4317.
 */
function grpcFallback (variableName: string, env: NodeJS.ProcessEnv, endpoint: URL): string {
  const isSet = variable(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined || variable(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined
  const port = endpoint.port === '' ? (endpoint.protocol === 'https:' ? '443' : '80') : endpoint.port
  const note = !isSet
    ? ' (no endpoint is set: the OTLP/HTTP default port 4318, where gRPC\'s default is 4317)'
    : port === '4317' ? ' (port 4317 is where a collector usually takes gRPC: its OTLP/HTTP receiver is usually on 4318)' : ''
  return `${variableName} is "grpc", which Gatehouse does not send: traces go over http/protobuf to ${endpoint.href}${note}`
}

/**
 * The switch (docs/operations.md, Tracing): traces are on when `OTEL_TRACES_EXPORTER` names
 * `otlp`, or an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`,
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); off when none of them is set, when
 * `OTEL_TRACES_EXPORTER=none`, or when `OTEL_SDK_DISABLED=true`. Undefined means off.
 * The protocol `grpc` falls back to http/protobuf (`fallback` says so); anything else we
 * cannot honour (another exporter or protocol) is a ConfigError at start.
 */
export function tracingSettings (env: NodeJS.ProcessEnv): TracingSettings | undefined {
  if (variable(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined
  const exporters = (variable(env, 'OTEL_TRACES_EXPORTER') ?? '').split(',').map((e) => e.trim().toLowerCase()).filter((e) => e !== '')
  if (exporters.includes('none')) return undefined
  const hasEndpoint = variable(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined || variable(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined
  if (exporters.length === 0 && !hasEndpoint) return undefined
  const other = exporters.find((e) => e !== 'otlp')
  if (other !== undefined) throw envProblem('OTEL_TRACES_EXPORTER', `is "${other}": Gatehouse exports traces with otlp only (or none)`)
  const protocolName = variable(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') === undefined ? 'OTEL_EXPORTER_OTLP_PROTOCOL' : 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'
  const protocol = variable(env, protocolName) ?? 'http/json'
  const endpoint = describeEndpoint(env)
  if (protocol === 'grpc') return { protocol: 'http/protobuf', endpoint: endpoint.href, fallback: grpcFallback(protocolName, env, endpoint) }
  if (protocol !== 'http/json' && protocol !== 'http/protobuf') throw envProblem(protocolName, `is "${protocol}": Gatehouse sends OTLP over HTTP, http/json (the default) or http/protobuf (grpc falls back to http/protobuf)`)
  return { protocol, endpoint: endpoint.href }
}

/** A running SDK, from {@link startTracing}. */
export interface TracingHandle {
  readonly settings: TracingSettings
  /** Sends the spans still buffered (bounded in time); call it when the service stops. */
  shutdown (): Promise<void>
}

/**
 * For a service's main.ts: starts the OpenTelemetry SDK when the process environment asks for
 * traces ({@link tracingSettings}); otherwise returns undefined and loads no SDK module at all.
 * The SDK and its exporter read their own `OTEL_*` variables from `process.env` too, so this
 * takes no other environment. Call it before building the app, so that the app's hooks and
 * Redis clients are traced.
 *
 * `log` gets, from the start (before the exporter is built, so nothing it says is lost): the
 * SDK's own problems as `tracing: ...` warnings, a gRPC fallback's warning, and the line that
 * says tracing is on. Give it a logger like the app's (same level and options).
 */
export async function startTracing (service: { name: string, version: string }, log: FastifyBaseLogger): Promise<TracingHandle | undefined> {
  const settings = tracingSettings(process.env)
  if (settings === undefined) return undefined
  const sdk = await import('./tracing-sdk.ts')
  return sdk.startSdk(settings, service, log)
}
