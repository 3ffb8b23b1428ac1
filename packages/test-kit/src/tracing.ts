/**
 * An in-memory OpenTelemetry SDK for a test process: registered once (the provider is global to
 * the process, so a test file either traces or does not), every ended span kept, exported at
 * once (no batching to wait for).
 *
 *   const tracing = memoryTracing()          before building the apps under test
 *   tracing.spans()                          every span ended so far
 *   tracing.reset()                          forget them
 */
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node'

export type { ReadableSpan }

export interface MemoryTracing {
  spans: () => ReadableSpan[]
  reset: () => void
}

let registered: MemoryTracing | undefined

export function memoryTracing (): MemoryTracing {
  if (registered !== undefined) return registered
  const exporter = new InMemorySpanExporter()
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  provider.register()
  registered = { spans: () => exporter.getFinishedSpans(), reset: () => { exporter.reset() } }
  return registered
}
