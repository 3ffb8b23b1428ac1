/**
 * The OpenTelemetry SDK of a service (docs/operations.md, Tracing). Imported only by
 * `startTracing` (tracing.ts), and only when the environment asks for traces: a service
 * without the `OTEL_*` variables never loads this module or anything it imports.
 *
 * What the SDK and the exporter read from the environment themselves: `OTEL_SERVICE_NAME` and
 * `OTEL_RESOURCE_ATTRIBUTES` (over our `service.name` and `service.version`), the sampler
 * (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`), the batch (`OTEL_BSP_*`), the span limits,
 * and the exporter's endpoint, headers, timeout, compression and TLS files
 * (`OTEL_EXPORTER_OTLP_*`, `OTEL_EXPORTER_OTLP_TRACES_*`). Propagation is W3C Trace Context
 * (`traceparent`, `tracestate`) and W3C Baggage.
 */
import { diag, DiagLogLevel, type DiagLogger } from '@opentelemetry/api'
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node'
import type { FastifyBaseLogger } from 'fastify'
import type { TracingHandle, TracingSettings } from './tracing.ts'

/** Longest a stop waits for buffered spans to be sent (a collector that is down must not hold it). */
const SHUTDOWN_TIMEOUT_MS = 5_000

function diagLogger (log: FastifyBaseLogger): DiagLogger {
  const report = (message: string, ...args: unknown[]): void => {
    log.warn({ detail: args.map((a) => a instanceof Error ? a.message : String(a)) }, `tracing: ${message}`)
  }
  const ignore = (): void => {}
  return { error: report, warn: report, info: ignore, debug: ignore, verbose: ignore }
}

/**
 * Registers the SDK (tracer provider, context manager, W3C propagators) for the whole process.
 * The SDK's problems go to `log` before anything is built: the exporter and the batch warn
 * about unusable `OTEL_*` values as they read them.
 */
export function startSdk (settings: TracingSettings, service: { name: string, version: string }, log: FastifyBaseLogger): TracingHandle {
  diag.setLogger(diagLogger(log), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true })
  if (settings.fallback !== undefined) log.warn({ protocol: settings.protocol, endpoint: settings.endpoint }, `tracing: ${settings.fallback}`)
  const exporter = settings.protocol === 'http/protobuf' ? new ProtobufExporter() : new JsonExporter()
  // Later wins: the SDK's defaults, then ours, then OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': service.name, 'service.version': service.version }))
    .merge(detectResources({ detectors: [envDetector] }))
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] })
  provider.register()
  log.info({ protocol: settings.protocol, endpoint: settings.endpoint, service: resource.attributes['service.name'] }, 'tracing on: spans are exported with OTLP')
  return {
    settings,
    async shutdown () {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        provider.shutdown().catch(() => {}),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS).unref() })
      ])
      clearTimeout(timer)
    }
  }
}
