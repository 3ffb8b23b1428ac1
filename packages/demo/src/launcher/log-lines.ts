/**
 * The launcher's output: each child's pino JSON lines reduced to `level msg` and a few fields,
 * behind a `[name]` prefix; anything that is not a pino line is shown as it came.
 */

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }

/** pino's bookkeeping, the fields the request summary already shows, and an audit event's name (its msg). */
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'v', 'reqId', 'req', 'res', 'method', 'url', 'statusCode', 'ms', 'responseTime', 'event'])

const ANSI = {
  reset: '\x1b[0m',
  dim: '\x1b[2m',
  bold: '\x1b[1m',
  red: '\x1b[31m',
  green: '\x1b[32m',
  yellow: '\x1b[33m',
  magenta: '\x1b[35m',
  cyan: '\x1b[36m'
} as const

export type Color = keyof typeof ANSI

/** Paints text when colors are on (a TTY without NO_COLOR); returns it as is otherwise. */
export function painter (enabled: boolean): (color: Color, text: string) => string {
  return enabled ? (color, text) => `${ANSI[color]}${text}${ANSI.reset}` : (_color, text) => text
}

const LEVEL_COLORS: Record<string, Color> = { trace: 'dim', debug: 'dim', warn: 'yellow', error: 'red', fatal: 'red' }

function fieldValue (value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) ? JSON.stringify(value) : value
  if (typeof value === 'object' && value !== null && 'message' in value) return JSON.stringify(String(value.message))
  const json = JSON.stringify(value) ?? String(value)
  return json.length > 80 ? `${json.slice(0, 77)}...` : json
}

/** One pino JSON line made readable; null when the line is not pino JSON. */
export function formatPinoLine (line: string, paint: ReturnType<typeof painter>): string | null {
  if (!line.startsWith('{')) return null
  let entry: Record<string, unknown>
  try {
    entry = JSON.parse(line) as Record<string, unknown>
  } catch {
    return null
  }
  if (typeof entry !== 'object' || entry === null || typeof entry.level !== 'number') return null
  const level = LEVELS[entry.level] ?? String(entry.level)
  const parts = [paint(LEVEL_COLORS[level] ?? 'reset', level.padEnd(5)), String(entry.msg ?? '')]
  if (typeof entry.method === 'string' && typeof entry.url === 'string') {
    const time = typeof entry.ms === 'number' ? ` ${entry.ms}ms` : ''
    parts.push(`${entry.method} ${entry.url}${entry.statusCode === undefined ? '' : ` ${String(entry.statusCode)}`}${time}`)
  }
  for (const [key, value] of Object.entries(entry)) {
    if (HIDDEN.has(key) || value === undefined || value === null) continue
    parts.push(paint('dim', `${key}=${fieldValue(value)}`))
  }
  return parts.filter((p) => p !== '').join(' ')
}

/** A child's line with its prefix: pino lines reduced, others raw. */
export function prefixLine (name: string, line: string, paint: ReturnType<typeof painter>, color: Color): string {
  return `${paint(color, `[${name}]`)} ${formatPinoLine(line, paint) ?? line}`
}
