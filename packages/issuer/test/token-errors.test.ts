/**
 * Malformed requests of every kind get the RFC 6749 5.2 error, a 4xx, no-store, and the
 * server keeps answering afterwards. Real HTTP (so raw bytes reach the parser), memory store.
 */
import t, { type Test } from 'tap'
import { request as httpRequest } from 'node:http'
import { startIssuer, postForm, basic } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'

const { url } = await startIssuer(t, 'memory')
const token = `${url}/oauth2/token`
const cli = { authorization: basic('cli', SECRETS.cli) }

async function raw (body: string | Buffer, headers: Record<string, string>, path = '/oauth2/token'): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, json: Record<string, unknown> }> {
  const target = new URL(path, url)
  return await new Promise((resolve, reject) => {
    const req = httpRequest(target, { method: 'POST', headers }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => { text += chunk.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text === '' ? {} : JSON.parse(text) }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

function expectError (t: Test, res: { status: number, headers: Headers | Record<string, unknown>, json: Record<string, unknown> }, status: number, error: string, label: string): void {
  t.equal(res.status, status, `${label}: status`)
  t.equal(res.json.error, error, `${label}: error code`)
  const cacheControl = res.headers instanceof Headers ? res.headers.get('cache-control') : res.headers['cache-control']
  t.equal(cacheControl, 'no-store', `${label}: no-store`)
  if (res.json.error_description !== undefined) t.type(res.json.error_description, 'string')
}

t.test('missing and unknown parameters', async (t) => {
  expectError(t, await postForm(token, {}, cli), 400, 'invalid_request', 'no grant_type')
  expectError(t, await postForm(token, { grant_type: 'urn:nope' }, cli), 400, 'unsupported_grant_type', 'unknown grant')
  expectError(t, await postForm(token, { grant_type: 'client_credentials' }, cli), 400, 'unauthorized_client', 'grant not allowed for client')
  expectError(t, await postForm(token, { grant_type: 'password', username: 'alice' }, cli), 400, 'invalid_request', 'no password')
  expectError(t, await postForm(token, { grant_type: 'refresh_token' }, cli), 400, 'invalid_request', 'no refresh_token')
  expectError(t, await postForm(token, { grant_type: 'refresh_token', refresh_token: 'garbage' }, cli), 400, 'invalid_grant', 'garbage refresh_token')
  expectError(t, await postForm(token, { grant_type: 'password', username: 'alice', password: 'alice-password', scope: 'api:read  api:write' }, cli), 400, 'invalid_scope', 'double space in scope')
})

t.test('duplicate parameters are refused (RFC 6749 3.2)', async (t) => {
  expectError(t, await postForm(token, 'grant_type=password&grant_type=password&username=alice&password=alice-password', cli), 400, 'invalid_request', 'repeated grant_type')
  expectError(t, await postForm(token, 'grant_type=password&username=alice&username=bob&password=alice-password', cli), 400, 'invalid_request', 'repeated username')
})

t.test('anything but a form body', async (t) => {
  expectError(t, await raw(JSON.stringify({ grant_type: 'password' }), { 'content-type': 'application/json', ...cli }), 400, 'invalid_request', 'JSON body')
  expectError(t, await raw('{not json', { 'content-type': 'application/json', ...cli }), 400, 'invalid_request', 'broken JSON body')
  expectError(t, await raw('grant_type=password', { 'content-type': 'text/plain', ...cli }), 400, 'invalid_request', 'text/plain')
  expectError(t, await raw('', { ...cli }), 400, 'invalid_request', 'no body at all')
  expectError(t, await raw(Buffer.from([0xff, 0xfe, 0x00, 0x01]), { 'content-type': 'application/octet-stream', ...cli }), 400, 'invalid_request', 'binary')
})

t.test('huge values and bodies', async (t) => {
  expectError(t, await postForm(token, { grant_type: 'password', username: 'alice', password: 'x'.repeat(9000) }, cli), 400, 'invalid_request', 'huge parameter')
  expectError(t, await postForm(token, `grant_type=password&pad=${'a'.repeat(70 * 1024)}`, cli), 413, 'invalid_request', 'huge body')
  expectError(t, await postForm(token, { grant_type: 'password', username: 'u'.repeat(500), password: 'p' }, cli), 400, 'invalid_grant', 'long username')
})

t.test('bad client authentication', async (t) => {
  const cases: Array<[string, Record<string, string>, Record<string, string>]> = [
    ['not Basic', { authorization: 'Bearer abc' }, {}],
    ['Basic with junk', { authorization: 'Basic !!!***' }, {}],
    ['Basic without colon', { authorization: `Basic ${Buffer.from('cli').toString('base64')}` }, {}],
    ['Basic with bad percent-encoding', { authorization: `Basic ${Buffer.from('cli%zz:x').toString('base64')}` }, {}],
    ['wrong secret', { authorization: basic('cli', 'wrong-secret') }, {}],
    ['unknown client', { authorization: basic('nobody', SECRETS.cli) }, {}],
    ['no authentication for a confidential client', {}, { client_id: 'cli' }],
    ['no client at all', {}, {}],
    ['secret presented by a public client', {}, { client_id: 'spa', client_secret: 'whatever-secret' }]
  ]
  for (const [label, headers, extra] of cases) {
    const res = await postForm(token, { grant_type: 'password', username: 'alice', password: 'alice-password', ...extra }, headers)
    expectError(t, res, 401, 'invalid_client', label)
    t.match(res.headers.get('www-authenticate'), /^Basic realm="gatehouse"/, `${label}: challenge`)
  }
  expectError(t, await postForm(token, { grant_type: 'password', client_secret: SECRETS.cli }, cli), 400, 'invalid_request', 'two authentication methods')
  expectError(t, await postForm(token, { grant_type: 'password', client_id: 'other' }, cli), 400, 'invalid_request', 'client_id differs from Basic')
})

t.test('the server still answers afterwards', async (t) => {
  const res = await postForm(token, { grant_type: 'password', username: 'alice', password: 'alice-password', scope: 'api:read' }, cli)
  t.equal(res.status, 200)
  t.type(res.json.access_token, 'string')
  const health = await fetch(`${url}/healthz`)
  t.equal(health.status, 200)
})

t.test('unknown paths and methods are clean 404s, never 500', async (t) => {
  t.equal((await fetch(`${url}/oauth2/token`)).status, 404)
  t.equal((await fetch(`${url}/nope`)).status, 404)
  const res = await fetch(`${url}/%zz`)
  t.ok(res.status >= 400 && res.status < 500, `bad URL encoding: ${res.status}`)
})
