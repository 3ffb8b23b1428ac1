/**
 * Escaping for server-rendered pages: every value interpolated into an `html` template is
 * HTML-escaped unless it is already a built fragment (`Html`, from `html` itself or `raw`).
 */

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;'
}

/** Escapes `& < > " '` and backtick, so the result is safe in text and in quoted attribute values. */
export function escapeHtml (value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ESCAPES[c] ?? c)
}

/** A fragment of markup that is already safe to emit as is. */
export class Html {
  readonly value: string
  constructor (value: string) {
    this.value = value
  }

  toString (): string {
    return this.value
  }
}

/** What an `html` template accepts: text (escaped), fragments (kept) and lists of either. */
export type Interpolation = string | number | Html | readonly Interpolation[]

/**
 * The escape hatch: marks `fragment` as already-built markup. Only for fragments the pages
 * build themselves (the constant style sheet), never for request data.
 */
export function raw (fragment: string): Html {
  return new Html(fragment)
}

function render (value: Interpolation): string {
  if (value instanceof Html) return value.value
  if (Array.isArray(value)) return value.map(render).join('')
  return escapeHtml(String(value))
}

/** Tagged template that HTML-escapes every interpolated value. Attribute values must be quoted. */
export function html (strings: TemplateStringsArray, ...values: Interpolation[]): Html {
  let out = strings[0] ?? ''
  for (let i = 0; i < values.length; i++) {
    out += render(values[i] as Interpolation) + (strings[i + 1] ?? '')
  }
  return new Html(out)
}
