/** One thing wrong with a config file, located in the YAML source. */
export interface ConfigProblem {
  /** The file as given to the loader, e.g. `gateway.yaml`. */
  file: string
  /** 1-based; 0 when the problem has no position (the file could not be read). */
  line: number
  /** 1-based; 0 together with `line`. */
  column: number
  /** Config path such as `routes[2].upstream`; `(root)` for the whole document. */
  path: string
  /** Human-readable; never contains an environment variable's value. */
  message: string
}

/**
 * Formats a problem as `file:line:column path message`, e.g.
 * `gateway.yaml:14:7 routes[2].upstream must match format "uri"`.
 * Problems without a position print as `file path message`.
 */
export function formatProblem (p: ConfigProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file
  return `${where} ${p.path} ${p.message}`
}

/** A config file failed to load. `message` holds every problem, one per line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly problems: ConfigProblem[]

  constructor (problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'))
    this.problems = problems
  }
}

/** Prints config paths the way the schema reference does: `routes[2].upstream`. */
export function formatPath (segments: ReadonlyArray<string | number>): string {
  let out = ''
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`
    else if (/^[A-Za-z_$][\w$-]*$/.test(s)) out += out === '' ? s : `.${s}`
    else out += `[${JSON.stringify(s)}]`
  }
  return out === '' ? '(root)' : out
}
