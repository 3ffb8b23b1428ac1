/** Environment as the loader sees it; an empty value counts as unset. */
export type Env = Record<string, string | undefined>

export interface Interpolation {
  value: string
  /** Messages that name variables or references, never a variable's value. */
  errors: string[]
}

const REFERENCE = /\$\$\{|\$\{([^}]*)(\}?)/g
const BODY = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s

/** True when `text` is exactly one `${...}` reference, so the result may be re-typed. */
export function isWholeReference (text: string): boolean {
  return /^\$\{[^}]*\}$/.test(text)
}

/**
 * Replaces `${NAME}` and `${NAME:-default}` in `text` from `env`.
 * `$${` stays a literal `${`. As in the shell's `:-`, a set but empty variable takes
 * the default; without a default it is an error, like an unset one.
 */
export function interpolate (text: string, env: Env): Interpolation {
  const errors: string[] = []
  const value = text.replace(REFERENCE, (match, body: string | undefined, close: string) => {
    if (match === '$${') return '${'
    if (close === '') {
      errors.push('unterminated "${" (write "$${" for a literal "${")')
      return match
    }
    const parsed = BODY.exec(body ?? '')
    if (parsed === null) {
      errors.push(`invalid reference "${match}": expected \${NAME} or \${NAME:-default}`)
      return match
    }
    const [, name = '', fallback] = parsed
    if (fallback?.includes('${') === true) {
      errors.push(`nested reference in the default of "\${${name}:-...}" is not supported`)
      return match
    }
    const found = env[name]
    if (found !== undefined && found !== '') return found
    if (fallback !== undefined) return fallback
    errors.push(`environment variable ${name} is not set`)
    return ''
  })
  return { value, errors }
}
