/**
 * Fastify's `request.log` without a pino child per request. A child costs more than its few
 * microseconds: pino copies its methods onto it, and its objects outlive the request often
 * enough to reach the old generation (80 % of what the gateway moved there per request in its
 * benchmark, issue 14), where the garbage adds up to mark-compact pauses of tens of
 * milliseconds, felt in the latency tail.
 *
 * A line given as a plain object is written by the parent with the request's bindings in
 * front of the object's fields: byte for byte what the child would write (a field named like
 * a binding is written once, the object's value). Anything else (a message alone, an Error,
 * a child of the request's logger, its level, a route with its own log level or options)
 * goes through a real child, made once, the first time it is needed.
 */
import type { FastifyBaseLogger } from 'fastify'

type Bindings = Parameters<FastifyBaseLogger['child']>[0]
type ChildLoggerOptions = NonNullable<Parameters<FastifyBaseLogger['child']>[1]>

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
type Write = (...args: unknown[]) => void

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

export class RequestLogger implements FastifyBaseLogger {
  readonly #parent: FastifyBaseLogger
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions
  /** Writes go through a child: the options change what the child writes (level, serializers...). */
  readonly #needsChild: boolean
  #child: FastifyBaseLogger | undefined

  constructor (parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions = {}) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
    this.#needsChild = Object.keys(options).length > 0
  }

  #real (): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options)
    return this.#child
  }

  #write (level: Level, args: unknown[]): void {
    const first = args[0]
    if (this.#child === undefined && !this.#needsChild && isPlainObject(first)) {
      // Object.assign, not a spread: in Node 20's V8, `{ ...a, ...b }` and `{ ...a, key }`
      // allocate their result in the old generation (a loop that makes nothing else set off a
      // mark-compact every ~22,000 of them, Object.assign none), which is exactly what this
      // class is here to avoid.
      args[0] = Object.assign({}, this.#bindings, first)
      ;(this.#parent[level] as Write)(...args)
    } else {
      (this.#real()[level] as Write)(...args)
    }
  }

  fatal (...args: unknown[]): void { this.#write('fatal', args) }
  error (...args: unknown[]): void { this.#write('error', args) }
  warn (...args: unknown[]): void { this.#write('warn', args) }
  info (...args: unknown[]): void { this.#write('info', args) }
  debug (...args: unknown[]): void { this.#write('debug', args) }
  trace (...args: unknown[]): void { this.#write('trace', args) }
  silent (): void {}

  child (bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options)
  }

  get level (): string {
    return this.#needsChild || this.#child !== undefined ? this.#real().level : this.#parent.level
  }

  set level (level: string) {
    this.#real().level = level
  }
}
