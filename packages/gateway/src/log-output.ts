/**
 * Where the gateway's log lines go when it runs as a service: stdout, batched. pino's own
 * destination (sonic-boom) writes each line with a system call of its own; here lines gather
 * in memory and go out together (a write per `minLength` bytes, or every `intervalMs`), still
 * synchronously, so nothing is ever in flight in another thread:
 * - a clean stop (SIGTERM, SIGINT) and every exit, a crash included (an uncaught exception,
 *   `process.exit`), write what is buffered before the process ends (`exit` listener);
 * - only a SIGKILL, or the machine going down, can lose the last `intervalMs` of lines.
 * Tests prove both (test/gateway-log-flush.test.ts).
 */
import pino from 'pino'

/** What goes to pino as its stream: the batched destination. */
export type LogOutput = ReturnType<typeof pino.destination>

export interface LogOutputOptions {
  /** Bytes gathered before a write (sonic-boom's `minLength`). */
  minLength?: number
  /** Longest a line waits in memory, ms. */
  intervalMs?: number
  /** File descriptor; 1 (stdout). */
  fd?: number
}

export function batchedLogOutput ({ minLength = 8192, intervalMs = 200, fd = 1 }: LogOutputOptions = {}): LogOutput {
  const destination = pino.destination({ dest: fd, sync: true, minLength })
  const timer = setInterval(() => { destination.flush() }, intervalMs).unref()
  process.once('exit', () => {
    clearInterval(timer)
    try {
      destination.flushSync()
    } catch {
      // Nothing more can be done at exit (stdout closed).
    }
  })
  return destination
}
