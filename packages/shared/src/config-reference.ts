/**
 * Markdown reference for a config schema, so the tables of docs/configuration.md are generated
 * from the same schema that validates the file and cannot drift from it.
 */

type Schema = Record<string, unknown>

interface Row { path: string, type: string, fallback: string, description: string }

/**
 * Renders one table row per key: dotted path (`routes[].upstream`, map entries as
 * `headers.*`), type, default (`required` when there is none and the key is required) and
 * description. Walks nested objects, arrays and `anyOf`/`oneOf` branches.
 */
export function renderConfigReference (schema: object, options: { title?: string } = {}): string {
  const rows = new Map<string, Row>()
  walk(schema as Schema, '', rows)
  const lines = ['| Key | Type | Default | Description |', '| --- | --- | --- | --- |']
  for (const row of rows.values()) {
    lines.push(`| \`${row.path}\` | ${cell(row.type)} | ${cell(row.fallback)} | ${cell(row.description)} |`)
  }
  const title = options.title === undefined ? [] : [`## ${options.title}`, '']
  const intro = typeof (schema as Schema).description === 'string' ? [String((schema as Schema).description), ''] : []
  return [...title, ...intro, ...lines, ''].join('\n')
}

function walk (schema: Schema, prefix: string, rows: Map<string, Row>): void {
  const join = (key: string): string => (prefix === '' ? key : `${prefix}.${key}`)
  const required = new Set(Array.isArray(schema.required) ? schema.required.map(String) : [])
  for (const [key, child] of Object.entries(asSchema(schema.properties) ?? {})) {
    const sub = asSchema(child)
    if (sub !== undefined) add(sub, join(key), required.has(key), rows)
  }
  for (const child of [...Object.values(asSchema(schema.patternProperties) ?? {}), schema.additionalProperties]) {
    const sub = asSchema(child)
    if (sub !== undefined) add(sub, join('*'), false, rows)
  }
  for (const branch of branches(schema)) walk(branch, prefix, rows)
  const items = asSchema(schema.items)
  if (items !== undefined && prefix !== '') {
    if (items.items !== undefined) add(items, `${prefix}[]`, false, rows)
    else walk(items, `${prefix}[]`, rows)
  }
}

function add (schema: Schema, path: string, isRequired: boolean, rows: Map<string, Row>): void {
  const row = {
    path,
    type: typeOf(schema),
    fallback: 'default' in schema ? `\`${JSON.stringify(schema.default)}\`` : isRequired ? 'required' : '',
    description: typeof schema.description === 'string' ? schema.description : ''
  }
  const seen = rows.get(path)
  if (seen === undefined) rows.set(path, row)
  else {
    // The same key in several union branches: one row listing every type.
    if (!seen.type.split(' | ').includes(row.type)) seen.type += ` | ${row.type}`
    seen.description ||= row.description
    seen.fallback ||= row.fallback
  }
  walk(schema, path, rows)
}

function typeOf (schema: Schema): string {
  if ('const' in schema) return JSON.stringify(schema.const)
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(' | ')
  const union = branches(schema)
  if (union.length > 0) return [...new Set(union.map(typeOf))].join(' | ')
  const types = [schema.type].flat().filter((t) => typeof t === 'string')
  const format = typeof schema.format === 'string' ? ` (${schema.format})` : ''
  return types.map((t) => {
    if (t === 'array') {
      const items = asSchema(schema.items)
      const inner = items === undefined ? 'any' : typeOf(items)
      return inner.includes(' ') ? `(${inner})[]` : `${inner}[]`
    }
    return t === 'object' && schema.patternProperties !== undefined ? 'map' : `${t}${t === 'string' ? format : ''}`
  }).join(' | ') || 'any'
}

function branches (schema: Schema): Schema[] {
  return [schema.anyOf, schema.oneOf].flatMap((list) => Array.isArray(list) ? list.map(asSchema).filter((s) => s !== undefined) : [])
}

function asSchema (value: unknown): Schema | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Schema : undefined
}

function cell (text: string): string {
  return text.replaceAll('|', '\\|').replace(/\s*\n\s*/g, ' ')
}
