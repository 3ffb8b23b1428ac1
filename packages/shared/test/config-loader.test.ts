/* eslint-disable no-template-curly-in-string -- the YAML under test uses ${NAME} references */
import t from 'tap'
import { fileURLToPath } from 'node:url'
import {
  ConfigError, formatProblem, loadConfigFile, parseConfig, renderConfigReference,
  type ConfigProblem, type LoadOptions
} from '../src/config-loader.ts'
import { gatewaySchema, type GatewayConfig } from './fixtures/gateway-schema.ts'

const fixture = (name: string): string => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url))

/** The problems a config raises, as `line:column path message` strings. */
function problemsOf (text: string, options: LoadOptions = {}): string[] {
  try {
    parseConfig(text, 'gateway.yaml', gatewaySchema, { env: {}, ...options })
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.line}:${p.column} ${p.path} ${p.message}`)
    throw err
  }
  throw new Error('expected a ConfigError')
}

const load = (text: string, options: LoadOptions = {}): GatewayConfig =>
  parseConfig<GatewayConfig>(text, 'gateway.yaml', gatewaySchema, { env: {}, ...options })

t.test('a valid file gets its defaults and is deep-frozen', async (t) => {
  const config = loadConfigFile<GatewayConfig>(fixture('gateway.yaml'), gatewaySchema, { env: {} })
  t.same(config, {
    issuer: 'https://id.example.com',
    port: 8080,
    logLevel: 'info',
    store: {},
    routes: [
      { prefix: '/orders', upstream: 'http://orders.internal:3000', auth: { scope: 'orders.read' } },
      { prefix: '/health', upstream: 'http://health.internal' }
    ]
  })
  t.ok(Object.isFrozen(config))
  t.ok(Object.isFrozen(config.routes))
  t.ok(Object.isFrozen(config.routes[0]?.auth))
  t.throws(() => { (config as { port: number }).port = 1 }, TypeError)
  t.throws(() => { config.routes.push({ prefix: '/x', upstream: 'http://x' }) }, TypeError)
})

t.test('an empty file is {} so defaults apply', async (t) => {
  const schema = { type: 'object', properties: { port: { type: 'integer', default: 8080 } } }
  t.same(parseConfig('', 'empty.yaml', schema), { port: 8080 })
  t.same(parseConfig('# only a comment\n', 'empty.yaml', schema), { port: 8080 })
})

t.test('an unknown key points at the key', async (t) => {
  const text = 'issuer: https://id.example\nroutes:\n  - prefix: /a\n    upstream: http://a.internal\n    timeuot: 5\n'
  const err = t.throws(() => load(text)) as ConfigError
  t.equal(err.name, 'ConfigError')
  t.same(err.problems, [{ file: 'gateway.yaml', line: 5, column: 5, path: 'routes[0]', message: 'unknown key "timeuot"' }])
  t.equal(err.message, 'gateway.yaml:5:5 routes[0] unknown key "timeuot"')
  t.same(problemsOf('issuer: https://id.example\nlisten: 80\n'), ['2:1 (root) unknown key "listen"'])
})

t.test('a wrong type points at the value', async (t) => {
  t.same(problemsOf('issuer: https://id.example\nport: eighty\n'), ['2:7 port must be integer'])
  t.same(problemsOf('issuer: https://id.example\nroutes:\n  prefix: /a\n'), ['2:1 routes must be array'])
})

t.test('a missing required key points at the map that lacks it', async (t) => {
  t.same(problemsOf('port: 80\n'), ['1:1 (root) missing required key "issuer"'])
  t.same(problemsOf('issuer: https://id.example\nstore:\n  redis:\n    db: 2\n'),
    ['3:3 store.redis missing required key "url"'])
  t.same(problemsOf('issuer: https://id.example\nroutes:\n  - prefix: /a\n  - upstream: http://b\n    prefix: /b\n  - prefix: /c\n'), [
    '3:5 routes[0] missing required key "upstream"',
    '6:5 routes[2] missing required key "upstream"'
  ])
})

t.test('enums and unions of literals list the allowed values once', async (t) => {
  t.same(problemsOf('issuer: https://id.example\nlogLevel: loud\n'), ['2:11 logLevel must be one of: debug, info, warn'])
  const schema = { type: 'object', properties: { mode: { enum: ['strict', 'lax'] } } }
  const err = t.throws(() => parseConfig('mode: loose\n', 'x.yaml', schema)) as ConfigError
  t.equal(err.message, 'x.yaml:1:7 mode must be one of: strict, lax')
})

t.test('a failed union is one problem, or the errors of the branch it nearly matched', async (t) => {
  const route = 'issuer: https://id.example\nroutes:\n  - prefix: /a\n    upstream: http://a\n'
  t.same(problemsOf(`${route}    auth: 3\n`), ['5:11 routes[0].auth must be boolean or object'])
  t.same(problemsOf(`${route}    auth:\n      scope: a\n      scopes: b\n`), ['7:7 routes[0].auth unknown key "scopes"'])
})

const upstreamSchema = {
  type: 'object',
  properties: {
    headers: { type: 'object', additionalProperties: { type: 'string', description: 'Header value' }, description: 'Extra headers' },
    upstreams: {
      type: 'array',
      items: {
        anyOf: [
          { type: 'object', additionalProperties: false, required: ['kind', 'url'], properties: { kind: { const: 'http', description: 'Transport' }, url: { type: 'string' } } },
          { type: 'object', additionalProperties: false, required: ['kind', 'socket'], properties: { kind: { const: 'unix' }, socket: { type: 'string' } } }
        ]
      }
    }
  }
}

t.test('a discriminated union reports against the branch its discriminator picks', async (t) => {
  const problems = (text: string): string[] => {
    const err = t.throws(() => parseConfig(text, 'u.yaml', upstreamSchema)) as ConfigError
    return err.message.split('\n')
  }
  t.same(problems('upstreams:\n  - kind: http\n    urll: x\n'), [
    'u.yaml:2:5 upstreams[0] missing required key "url"',
    'u.yaml:3:5 upstreams[0] unknown key "urll"'
  ])
  t.same(problems('upstreams:\n  - kind: ftp\n'), ['u.yaml:2:5 upstreams[0] must match a schema in anyOf'])
  t.same(problems('headers:\n  x.trace: 1\n'), ['u.yaml:2:12 headers["x.trace"] must be string'])
})

t.test('every problem in the file is reported, in file order', async (t) => {
  const text = [
    'port: 0',
    'logLevel: verbose',
    'store:',
    '  redis: { url: not a url, db: x }',
    'routes:',
    '  - prefix: orders',
    '    upstream: http://orders',
    'extra: true',
    ''
  ].join('\n')
  const err = t.throws(() => load(text)) as ConfigError
  t.same(err.message.split('\n'), [
    'gateway.yaml:1:1 (root) missing required key "issuer"',
    'gateway.yaml:1:7 port must be >= 1',
    'gateway.yaml:2:11 logLevel must be one of: debug, info, warn',
    'gateway.yaml:4:17 store.redis.url must match format "uri"',
    'gateway.yaml:4:32 store.redis.db must be integer',
    'gateway.yaml:6:13 routes[0].prefix must match pattern "^/"',
    'gateway.yaml:8:1 (root) unknown key "extra"'
  ])
  t.equal(err.problems.length, 7)
})

t.test('YAML syntax errors are located and skip schema checks', async (t) => {
  t.same(problemsOf('issuer: "https://id.example\nport: 80\n'), ['3:1 (root) invalid YAML: Missing closing "quote'])
  t.same(problemsOf('port: 80\nroutes: [/a\nissuer: x\n'), [
    '3:1 (root) invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]'
  ])
  t.same(problemsOf('issuer: *missing\n'), ['1:9 issuer invalid YAML: unknown alias "*missing"'])
  const laughs = ['a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]']
  for (const n of 'bcd') laughs.push(`${n}: &${n} [${Array(10).fill(`*${String.fromCharCode(n.charCodeAt(0) - 1)}`).join(', ')}]`)
  t.same(problemsOf(laughs.join('\n')), ['1:1 (root) invalid YAML: Excessive alias count indicates a resource exhaustion attack'])
})

t.test('a duplicate key points at its second occurrence', async (t) => {
  t.same(problemsOf('issuer: https://id.example\nstore:\n  redis:\n    url: redis://a\n    db: 1\n    url: redis://b\n'),
    ['6:5 store.redis duplicate key "url"'])
})

t.test('${NAME} interpolation', async (t) => {
  const env = { PORT: '9000', HOST: 'id.example', DEBUG: 'true' }
  const text = [
    'issuer: https://${HOST}:${PORT}/',
    'port: ${PORT}',
    'logLevel: ${LOG_LEVEL:-warn}',
    'routes:',
    '  - prefix: "${PREFIX:-/api}$${literal}"',
    '    upstream: http://up.internal',
    '    auth: ${DEBUG}',
    ''
  ].join('\n')
  const config = load(text, { env })
  t.equal(config.issuer, 'https://id.example:9000/')
  t.equal(config.port, 9000, 'a whole-scalar reference is typed like YAML: a number')
  t.equal(config.logLevel, 'warn', 'default used when unset')
  t.equal(config.routes[0]?.prefix, '/api${literal}', '$${ is a literal ${')
  t.equal(config.routes[0]?.auth, true, '"true" becomes a boolean')
  t.equal(load('issuer: https://x\nlogLevel: ${L:-warn}\n', { env: { L: '' } }).logLevel, 'warn', 'empty counts as unset')

  const strings = { type: 'object', properties: { pin: { type: 'string' } } }
  t.same(parseConfig('pin: "${PIN}"\n', 'x.yaml', strings, { env: { PIN: '0042' } }), { pin: '0042' }, 'a quoted reference stays a string')
  t.same(problemsOf('issuer: https://x\nport: ${PORT}\n', { env: { PORT: '80x' } }), ['2:7 port must be integer'])
})

t.test('a missing variable is a problem naming it, and values never leak', async (t) => {
  const text = 'issuer: ${ISSUER}\nstore:\n  redis:\n    url: redis://:${REDIS_PASSWORD}@cache:6379\n'
  t.same(problemsOf(text, { env: { ISSUER: 'hunter2-secret' } }), [
    '1:9 issuer must match format "uri"',
    '4:10 store.redis.url environment variable REDIS_PASSWORD is not set'
  ])
  const err = t.throws(() => load(text, { env: { ISSUER: 'hunter2-secret' } })) as ConfigError
  t.notMatch(err.message, 'hunter2')
  t.same(problemsOf('issuer: ${BAD NAME}\nport: ${PORT\n'), [
    '1:9 issuer invalid reference "${BAD NAME}": expected ${NAME} or ${NAME:-default}',
    '2:7 port unterminated "${" (write "$${" for a literal "${")'
  ])
  t.same(problemsOf('issuer: https://x\nport: ${A:-${B}}\n'), ['2:7 port nested reference in the default of "${A:-...}" is not supported'])
})

t.test('envOverrides set a dotted path, creating maps', async (t) => {
  const envOverrides = { REDIS_URL: 'store.redis.url', GATEWAY_PORT: 'port' }
  const text = 'issuer: https://id.example\nport: 80\n'
  const config = load(text, { envOverrides, env: { REDIS_URL: 'redis://cache:6379', GATEWAY_PORT: '8443' } })
  t.same(config.store, { redis: { url: 'redis://cache:6379', db: 0 } }, 'maps created, defaults filled below them')
  t.equal(config.port, 8443)
  t.same(load(text, { envOverrides, env: { REDIS_URL: '' } }).store, {}, 'an empty variable is not applied')
  t.same(problemsOf(text, { envOverrides, env: { REDIS_URL: 'not a url' } }),
    ['1:1 store.redis.url must match format "uri" (set by REDIS_URL)'])
  t.same(problemsOf(`${text}store: redis\n`, { envOverrides, env: { REDIS_URL: 'redis://c' } }), [
    '3:8 store must be a map to apply REDIS_URL to store.redis.url',
    '3:8 store must be object'
  ])
})

t.test('loadConfigFile: an unreadable file is a ConfigError without a position', async (t) => {
  const file = fixture('no-such.yaml')
  const err = t.throws(() => loadConfigFile(file, gatewaySchema)) as ConfigError
  t.same(err.problems, [{ file, line: 0, column: 0, path: '(root)', message: 'cannot read file: no such file (ENOENT)' }])
  t.equal(err.message, `${file} (root) cannot read file: no such file (ENOENT)`)
})

t.test('formatProblem', async (t) => {
  const p: ConfigProblem = { file: 'gateway.yaml', line: 14, column: 7, path: 'routes[2].upstream', message: 'must match format "uri"' }
  t.equal(formatProblem(p), 'gateway.yaml:14:7 routes[2].upstream must match format "uri"')
})

t.test('renderConfigReference renders one row per key from the schema', async (t) => {
  t.equal(renderConfigReference(gatewaySchema, { title: 'Gateway' }), [
    '## Gateway',
    '',
    'Gateway configuration.',
    '',
    '| Key | Type | Default | Description |',
    '| --- | --- | --- | --- |',
    '| `issuer` | string (uri) | required | Issuer URL whose tokens are accepted |',
    '| `port` | integer | `8080` | Listen port |',
    '| `logLevel` | "debug" \\| "info" \\| "warn" | `"info"` | Log level |',
    '| `store` | object | `{}` | Shared state |',
    '| `store.redis` | object |  | Redis; in-memory when omitted |',
    '| `store.redis.url` | string (uri) | required | redis:// URL |',
    '| `store.redis.db` | integer | `0` | Database number |',
    '| `routes` | object[] | `[]` | Proxied routes \\| first match wins |',
    '| `routes[].prefix` | string | required | Path prefix |',
    '| `routes[].upstream` | string (uri) | required | Upstream base URL |',
    '| `routes[].auth` | boolean \\| object |  | Token check for this route |',
    '| `routes[].auth.scope` | string | required | Required scope |',
    ''
  ].join('\n'))
})

t.test('renderConfigReference merges union branches and names map entries', async (t) => {
  t.equal(renderConfigReference(upstreamSchema), [
    '| Key | Type | Default | Description |',
    '| --- | --- | --- | --- |',
    '| `headers` | object |  | Extra headers |',
    '| `headers.*` | string |  | Header value |',
    '| `upstreams` | object[] |  |  |',
    '| `upstreams[].kind` | "http" \\| "unix" | required | Transport |',
    '| `upstreams[].url` | string | required |  |',
    '| `upstreams[].socket` | string | required |  |',
    ''
  ].join('\n'))
})
