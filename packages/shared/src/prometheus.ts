/**
 * The Prometheus text exposition format (0.0.4), written by hand for the issuer's and the
 * gateway's few metrics: a labelled counter and a writer. No registry, no label hashing.
 */

/** A label value, escaped (backslash, double quote, newline). */
export function escapeLabel (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** A sample value: NaN and the infinities spelled as Prometheus spells them. */
export function sampleValue (value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

/** A counter with one label (or none: the label value ''), counted in a Map. */
export class Counter {
  readonly name: string
  readonly help: string
  readonly label: string | undefined
  readonly #values = new Map<string, number>()

  constructor (name: string, help: string, label?: string) {
    this.name = name
    this.help = help
    this.label = label
  }

  inc (labelValue = '', by = 1): void {
    this.#values.set(labelValue, (this.#values.get(labelValue) ?? 0) + by)
  }

  get (labelValue = ''): number {
    return this.#values.get(labelValue) ?? 0
  }

  /** Writes HELP, TYPE and one sample per label value (an unlabelled counter always has its one). */
  writeTo (out: Exposition): void {
    out.head(this.name, 'counter', this.help)
    if (this.label === undefined) {
      out.sample(this.name, this.get())
      return
    }
    for (const [value, n] of this.#values) out.sample(this.name, n, { [this.label]: value })
  }
}

/** Collects lines of the text format. */
export class Exposition {
  readonly #lines: string[] = []

  head (name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
    this.#lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
  }

  sample (name: string, value: number, labels?: Record<string, string | number>): void {
    const set = labels === undefined ? '' : `{${Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(String(v))}"`).join(',')}}`
    this.#lines.push(`${name}${set} ${sampleValue(value)}`)
  }

  toString (): string {
    return `${this.#lines.join('\n')}\n`
  }
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
