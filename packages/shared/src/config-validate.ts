/**
 * The schema side of the config loader: Ajv validation (defaults filled in place) and
 * readable problems, each located at the YAML node behind the error's instancePath.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import formats from 'ajv-formats'
import { formatPath } from './config-error.ts'
import { locate, type Located, type ParsedYaml, type Segment } from './config-yaml.ts'

const compiled = new WeakMap<object, ValidateFunction>()

function compile (schema: object): ValidateFunction {
  let validate = compiled.get(schema)
  if (validate === undefined) {
    // One Ajv per schema, so two schemas may share an `$id`. `verbose` gives each error its
    // schema (for anyOf summaries); error.data is never printed, it may be a secret.
    const ajv = new Ajv({ strict: false, allErrors: true, useDefaults: true, verbose: true })
    formats.default(ajv)
    validate = ajv.compile(schema)
    compiled.set(schema, validate)
  }
  return validate
}

/** Which env var set which path, so a bad value can say where it came from. */
export type OverrideSources = Array<{ path: string[], name: string }>

/** Validates `data` in place (filling defaults) and returns its problems. */
export function validate (data: unknown, schema: object, parsed: ParsedYaml, overrides: OverrideSources): Located[] {
  const check = compile(schema)
  if (check(data)) return []
  const { kept, ambiguous } = pickErrors(check.errors ?? [])
  return kept.map((error) => {
    const path = toSegments(data, error.instancePath)
    let message = error.message ?? `fails "${error.keyword}"`
    let unknownKey: string | undefined
    if (error.keyword === 'additionalProperties' || error.keyword === 'unevaluatedProperties') {
      const params = error.params as { additionalProperty?: string, unevaluatedProperty?: string }
      unknownKey = params.additionalProperty ?? params.unevaluatedProperty ?? ''
      message = `unknown key "${unknownKey}"`
    } else if (error.keyword === 'required') {
      message = `missing required key "${(error.params as { missingProperty: string }).missingProperty}"`
    } else if (error.keyword === 'enum') {
      message = `must be one of: ${(error.params as { allowedValues: unknown[] }).allowedValues.map(show).join(', ')}`
    } else if ((error.keyword === 'anyOf' || error.keyword === 'oneOf') && !ambiguous.has(error)) {
      message = summarise(error) ?? message
    }
    const source = overrides.find((o) => o.path.every((s, i) => String(path[i]) === s))
    if (source !== undefined) message += ` (set by ${source.name})`
    // An unknown key is reported on its parent's path but points at the key itself.
    const where = unknownKey === undefined ? locate(parsed, path) : locate(parsed, [...path, unknownKey], true)
    return { ...where, path: formatPath(path), message }
  })
}

/**
 * Ajv reports every failed anyOf branch and then the anyOf itself. Keep one problem per
 * value: the anyOf summary, or, when exactly one branch got past the value's type and
 * failed deeper (an object with a typo), that branch's own errors.
 */
function pickErrors (errors: ErrorObject[]): { kept: ErrorObject[], ambiguous: Set<ErrorObject> } {
  const dropped = new Set<ErrorObject>()
  const ambiguous = new Set<ErrorObject>()
  const unions = errors
    .filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf')
    .sort((a, b) => a.schemaPath.length - b.schemaPath.length)
  for (const union of unions) {
    if (dropped.has(union)) continue
    const byBranch = new Map<string, ErrorObject[]>()
    for (const e of errors) {
      if (!e.schemaPath.startsWith(`${union.schemaPath}/`) || !isWithin(e.instancePath, union.instancePath)) continue
      const branch = e.schemaPath.slice(union.schemaPath.length + 1).split('/')[0] ?? ''
      byBranch.set(branch, [...byBranch.get(branch) ?? [], e])
    }
    const deep = [...byBranch.values()].filter((branch) => !branch.every((e) =>
      e.instancePath === union.instancePath && ['type', 'const', 'enum'].includes(e.keyword)))
    // A discriminator mismatch (`kind: must be equal to constant`) rules a branch out.
    const plausible = deep.length > 1 ? deep.filter((b) => !b.some((e) => e.keyword === 'const' || e.keyword === 'enum')) : deep
    const keep = plausible.length === 1 ? plausible[0] : undefined
    if (keep !== undefined) dropped.add(union)
    else if (deep.length > 0) ambiguous.add(union)
    for (const branch of byBranch.values()) {
      if (branch !== keep) for (const e of branch) dropped.add(e)
    }
  }
  return { kept: errors.filter((e) => !dropped.has(e)), ambiguous }
}

/** `must be one of: a, b` for unions of literals, `must be string or integer` for types. */
function summarise (error: ErrorObject): string | undefined {
  const branches = Array.isArray(error.schema) ? error.schema as Array<Record<string, unknown>> : []
  const values: unknown[] = []
  const types: string[] = []
  for (const b of branches) {
    if ('const' in b) values.push(b.const)
    else if (Array.isArray(b.enum)) values.push(...b.enum)
    else if (typeof b.type === 'string' || Array.isArray(b.type)) types.push(...[b.type].flat().map(String))
    else return undefined
  }
  if (types.length === 0) return `must be one of: ${values.map(show).join(', ')}`
  return `must be ${[...values.map((v) => JSON.stringify(v)), ...new Set(types)].join(' or ')}`
}

function show (value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value)
}

function isWithin (path: string, ancestor: string): boolean {
  return path === ancestor || path.startsWith(`${ancestor}/`)
}

/** JSON pointer to segments, numbers where the data holds an array. */
function toSegments (data: unknown, pointer: string): Segment[] {
  const segments: Segment[] = []
  let node = data
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~')
    const isIndex = Array.isArray(node)
    segments.push(isIndex ? Number(key) : key)
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined
  }
  return segments
}
