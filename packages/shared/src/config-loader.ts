/**
 * Config loading for the Gatehouse apps (docs/configuration.md): YAML -> `${NAME}` interpolation
 * -> env overrides -> Ajv with defaults -> every problem located in the file -> deep-frozen.
 */
import { readFileSync } from 'node:fs'
import { ConfigError, formatPath, type ConfigProblem } from './config-error.ts'
import type { Env } from './config-interpolate.ts'
import { readYaml, resolvePlain, locate, toData, type Located, type ParsedYaml } from './config-yaml.ts'
import { validate, type OverrideSources } from './config-validate.ts'

export { ConfigError, formatProblem, type ConfigProblem } from './config-error.ts'
export { renderConfigReference } from './config-reference.ts'

export interface LoadOptions {
  /** Source for `${NAME}` and `envOverrides`; defaults to `process.env`. Empty counts as unset. */
  env?: Record<string, string | undefined>
  /**
   * Env var name -> dotted config path, e.g. `{ REDIS_URL: 'store.redis.url' }`. Applied when
   * the variable is set and non-empty, creating intermediate maps. The value is typed like a
   * plain YAML scalar (`8080` is a number), as if the file said `url: ${REDIS_URL}`.
   */
  envOverrides?: Record<string, string>
  /**
   * Rules a schema cannot say (cross-references, combinations), run on the validated,
   * defaulted config. Each violation is located like a schema problem.
   */
  check?: (config: unknown) => Array<{ path: Array<string | number>, message: string }>
}

/**
 * Parses, interpolates, overrides, validates (filling schema defaults) and deep-freezes one
 * YAML config. An empty document is `{}`, so defaults apply.
 *
 * @param file - used only in problem locations
 * @param schema - a JSON Schema (TypeBox schemas work as they are)
 * @throws {ConfigError} listing every problem found, YAML, env and schema alike
 */
export function parseConfig<T> (text: string, file: string, schema: object, options: LoadOptions = {}): T {
  const env = options.env ?? process.env
  const parsed = readYaml(text, env)
  const data = toData(parsed)
  const problems = [...parsed.problems]
  const overrides = applyOverrides(data, parsed, env, options.envOverrides ?? {}, problems)
  // After a syntax error the tree is a guess; schema errors about it would mislead.
  if (!parsed.isBroken) {
    // A value whose interpolation failed already has its problem; its schema errors are noise.
    const where = (p: Located): string => `${p.line}:${p.column} ${p.path}`
    const spoilt = new Set(parsed.problems.map(where))
    problems.push(...validate(data, schema, parsed, overrides).filter((p) => !spoilt.has(where(p))))
  }
  if (problems.length === 0 && options.check !== undefined) {
    for (const v of options.check(data)) problems.push({ ...locate(parsed, v.path), path: formatPath(v.path), message: v.message })
  }
  if (problems.length > 0) throw new ConfigError(sortUnique(problems, file))
  return deepFreeze(data) as T
}

/**
 * Reads `file` (UTF-8) and {@link parseConfig}s it. A read failure is a ConfigError with
 * line 0.
 */
export function loadConfigFile<T> (file: string, schema: object, options: LoadOptions = {}): T {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError([{ file, line: 0, column: 0, path: '(root)', message: `cannot read file: ${describeReadError(err)}` }])
  }
  return parseConfig<T>(text, file, schema, options)
}

/** Why a file could not be read, for a person: `no such file (ENOENT)`. */
export function describeReadError (err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code ?? 'unknown error'
  return `${READ_ERRORS[code] ?? (err as Error).message} (${code})`
}

/**
 * A problem found after loading (a file the config names is unusable, a peer disagrees),
 * located in `file` like the loader's own: `issuer.yaml:4:11 listen.tls.key does not match ...`.
 * Without the file, or the field in it, the location falls back as {@link parseConfig}'s does.
 */
export function locatedProblem (file: string, path: Array<string | number>, message: string, env: LoadOptions['env'] = process.env): ConfigError {
  let text = ''
  try { text = readFileSync(file, 'utf8') } catch { /* no position then */ }
  const at = text === '' ? { line: 0, column: 0 } : locate(readYaml(text, env), path)
  return new ConfigError([{ file, ...at, path: formatPath(path), message }])
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory'
}

function applyOverrides (data: unknown, parsed: ParsedYaml, env: Env, overrides: Record<string, string>, problems: Located[]): OverrideSources {
  const applied: OverrideSources = []
  for (const [name, dotted] of Object.entries(overrides)) {
    const raw = env[name]
    if (raw === undefined || raw === '') continue
    const path = dotted.split('.')
    let node = data
    for (const [i, segment] of path.entries()) {
      if (node === null || typeof node !== 'object' || Array.isArray(node)) {
        const at = path.slice(0, i)
        problems.push({ ...locate(parsed, at), path: formatPath(at), message: `must be a map to apply ${name} to ${dotted}` })
        break
      }
      const map = node as Record<string, unknown>
      if (i === path.length - 1) {
        map[segment] = resolvePlain(parsed.doc, raw)
        applied.push({ path, name })
      } else {
        map[segment] ??= {}
        node = map[segment]
      }
    }
  }
  return applied
}

function sortUnique (problems: Located[], file: string): ConfigProblem[] {
  const unique = new Map<string, ConfigProblem>()
  for (const p of problems) unique.set(`${p.line}:${p.column} ${p.path} ${p.message}`, { file, ...p })
  return [...unique.values()].sort((a, b) => a.line - b.line || a.column - b.column)
}

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
