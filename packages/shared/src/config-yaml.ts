/**
 * The YAML side of the config loader: parsing, `${NAME}` interpolation in place, and
 * finding the node behind a config path so problems carry a line and column.
 */
import { LineCounter, parseDocument, isAlias, isMap, isScalar, isSeq, type Document, type Node, type ScalarTag } from 'yaml'
import { interpolate, isWholeReference, type Env } from './config-interpolate.ts'
import { formatPath, type ConfigProblem } from './config-error.ts'

export type Segment = string | number
export type Located = Omit<ConfigProblem, 'file'>

export interface ParsedYaml {
  doc: Document
  lineCounter: LineCounter
  problems: Located[]
  /** Syntax errors make the tree unreliable, so schema checks would only add noise. */
  isBroken: boolean
}

/** Parses `text` and interpolates its string scalars from `env`. */
export function readYaml (text: string, env: Env): ParsedYaml {
  const lineCounter = new LineCounter()
  // Duplicate keys are found in `walk`, which can name the key and its path.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false })
  const at = (offset: number, path: Segment[], message: string): Located => {
    const { line, col } = lineCounter.linePos(offset)
    return { line, column: col, path: formatPath(path), message }
  }
  const problems = doc.errors.map((e) => at(e.pos[0], [], `invalid YAML: ${e.message}`))

  const walk = (node: unknown, path: Segment[]): void => {
    if (isMap(node)) {
      const seen = new Set<unknown>()
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key.value : undefined
        const keyPath = [...path, String(key)]
        if (isScalar(pair.key) && seen.has(key)) {
          problems.push(at(offsetOf(pair.key), path, `duplicate key "${String(key)}"`))
        }
        seen.add(key)
        walk(pair.value, keyPath)
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]))
    } else if (isAlias(node) && node.resolve(doc) === undefined) {
      problems.push(at(offsetOf(node), path, `invalid YAML: unknown alias "*${node.source}"`))
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${')) {
      const source = node.value
      const { value, errors } = interpolate(source, env)
      for (const message of errors) problems.push(at(offsetOf(node), path, message))
      // Only an untagged plain scalar is re-typed: `port: ${PORT}` is a number,
      // while `password: "${PASSWORD}"` stays a string whatever it holds.
      const isRetyped = node.type === 'PLAIN' && node.tag === undefined && isWholeReference(source)
      node.value = isRetyped && value !== '' ? resolvePlain(doc, value) : value
    }
  }
  walk(doc.contents, [])
  return { doc, lineCounter, problems, isBroken: problems.some((p) => p.message.startsWith('invalid YAML')) }
}

/** The document as plain data; `{}` when empty, so schema defaults apply. */
export function toData (parsed: ParsedYaml): unknown {
  if (parsed.doc.contents === null || parsed.isBroken) return {}
  try {
    return parsed.doc.toJS()
  } catch (err) {
    // e.g. too many aliases (a "billion laughs" document)
    parsed.problems.push({ line: 1, column: 1, path: '(root)', message: `invalid YAML: ${(err as Error).message}` })
    parsed.isBroken = true
    return {}
  }
}

/** Types `text` as a plain YAML scalar would be: `8080` -> 8080, `true` -> true, `~` -> null. */
export function resolvePlain (doc: Document, text: string): unknown {
  for (const tag of doc.schema.tags) {
    const scalar = tag as ScalarTag
    if (scalar.default === true && scalar.test?.test(text) === true) {
      const value = scalar.resolve(text, () => {}, doc.options)
      return isScalar(value) ? value.value : value // the bool tag returns a Scalar
    }
  }
  return text
}

/**
 * Line and column for a config path. A scalar points at its value, a collection at its key;
 * when the path goes past what the file holds (defaults, env overrides) it points at the
 * nearest ancestor. `preferKey` points at the last key itself (for unknown keys).
 */
export function locate (parsed: ParsedYaml, path: readonly Segment[], preferKey = false): { line: number, column: number } {
  const { doc, lineCounter } = parsed
  let node: unknown = doc.contents
  let key: Node | null = null
  for (const segment of path) {
    if (isAlias(node)) node = node.resolve(doc)
    if (isMap(node)) {
      const pair = node.items.findLast((p) => isScalar(p.key) && String(p.key.value) === String(segment))
      if (pair === undefined) break
      key = pair.key as Node
      node = pair.value
    } else if (isSeq(node)) {
      const item = node.items[Number(segment)]
      if (item === undefined) break
      key = null
      node = item
    } else break
  }
  let offset = 0
  // An empty value (`key:` with nothing after it) sits at the line's end: point at the key.
  if (isScalar(node) && node.range != null && node.range[0] < node.range[1] && !preferKey) offset = offsetOf(node)
  else if (key !== null) offset = offsetOf(key)
  else if (node !== null && typeof node === 'object') offset = offsetOf(node as Node)
  const { line, col } = lineCounter.linePos(offset)
  return { line, column: col }
}

function offsetOf (node: Node): number {
  return node.range?.[0] ?? 0
}
