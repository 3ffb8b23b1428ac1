/**
 * The audit helper: one line per call with `event` as field and message, at the level asked,
 * fields left out when undefined, caller-controlled strings shortened, and an `ip` the request
 * logger already carries written once. Through Fastify's own pino logger.
 */
import t from 'tap'
import Fastify from 'fastify'
import { audit, loggableUri } from '../src/audit.ts'

const chunks: string[] = []
const app = Fastify({ logger: { level: 'debug', stream: { write: (chunk: string) => { chunks.push(chunk) } } } })
t.teardown(async () => await app.close())

function last (): { text: string, line: Record<string, unknown> } {
  const text = chunks.at(-1) ?? ''
  return { text, line: JSON.parse(text) as Record<string, unknown> }
}

t.test('event, fields, level', async (t) => {
  audit(app.log, 'sign_in.failed', { username: 'bob', client_id: 'cli', reason: 'invalid_credentials', sid: undefined })
  const { line } = last()
  t.match(line, { level: 30, event: 'sign_in.failed', msg: 'sign_in.failed', username: 'bob', client_id: 'cli', reason: 'invalid_credentials' })
  t.notOk('sid' in line, 'undefined fields are left out')
  audit(app.log, 'backchannel_logout.failed', { status: null }, 'warn')
  t.match(last().line, { level: 40, status: null })
  audit(app.log, 'ssf.poll.acknowledged', { count: 2 }, 'debug')
  t.match(last().line, { level: 20, count: 2 })
})

t.test('long caller-controlled strings are cut', async (t) => {
  audit(app.log, 'client_auth.failed', { client_id: 'x'.repeat(10_000) })
  const id = String(last().line.client_id)
  t.equal(id.length, 259, '256 characters and an ellipsis')
  t.ok(id.endsWith('...'))
})

t.test('an ip the logger already binds is written once; another one is kept', async (t) => {
  audit(app.log.child({ ip: '192.0.2.1' }), 'token.refused', { ip: '192.0.2.1', reason: 'expired' })
  const { text } = last()
  t.equal(text.match(/"ip":/g)?.length, 1, 'one ip key')
  t.equal(last().line.ip, '192.0.2.1')
  audit(app.log.child({ ip: '192.0.2.1' }), 'token.refused', { ip: '192.0.2.9' })
  t.equal(last().text.match(/"ip":"192\.0\.2\.9"/g)?.length, 1, 'a different one is not dropped')
  audit(app.log, 'token.refused', { ip: '192.0.2.2' })
  t.equal(last().line.ip, '192.0.2.2', 'unbound: written')
})

t.test('review findings: no field outside the list, receivers\' URLs without their query', async (t) => {
  const spread = { client_id: 'cli', access_token: 'eyJ-not-to-be-logged', password: 'hunter2-not-to-be-logged' }
  audit(app.log, 'token.issued', spread as never)
  const { text, line } = last()
  t.equal(line.client_id, 'cli')
  t.notOk(text.includes('not-to-be-logged'), 'a spread object cannot slip a field in under a name of its own')
  t.equal(loggableUri('https://rs.example:8443/bc/logout?key=s3cret#x'), 'https://rs.example:8443/bc/logout', 'origin and path, no query')
  t.equal(loggableUri('https://user:pass@rs.example/bc'), 'https://rs.example/bc', 'no userinfo')
  t.equal(loggableUri('not a url'), '(unparsable)')
})
