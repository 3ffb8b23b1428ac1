/**
 * Password checks at once are bounded (issue 9 item 2): `rateLimit.passwordHashConcurrency`
 * run, `passwordHashQueue` wait, and any more are refused at once with 503 and Retry-After,
 * on the password grant and the login page alike. Deterministic: the test holds the slots
 * itself through `app.issuer.users.checks` and waits for conditions, never for a time.
 */
import t from 'tap'
import { availableParallelism } from 'node:os'
import { startIssuer, postForm, basic } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { Browser } from './fixtures/browser.ts'
import { waitFor } from './fixtures/flows.ts'
import { PasswordCheckLimit, PasswordChecksBusy } from '../src/password-check-limit.ts'

const passwordGrant = async (url: string, username: string, password: string): Promise<Awaited<ReturnType<typeof postForm>>> =>
  await postForm(`${url}/oauth2/token`, { grant_type: 'password', username, password, scope: 'api:read' }, { authorization: basic('cli', SECRETS.cli) })

/** Takes one slot of `checks` (as a password check would) until `release()`. */
function hold (checks: PasswordCheckLimit): { release: () => void, done: Promise<void> } {
  let release = (): void => {}
  const done = checks.run(async () => { await new Promise<void>((resolve) => { release = resolve }) })
  return { release: () => { release() }, done }
}

t.test('beyond the slot and the queue, a sign-in is refused at once with 503 and Retry-After', async (t) => {
  const { app, url } = await startIssuer(t, 'memory', 'rateLimit: { passwordHashConcurrency: 1, passwordHashQueue: 0, loginPerUsername: 1 }\n')
  const checks = app.issuer.users.checks
  const slot = hold(checks)
  t.equal(checks.active, 1, 'the one slot is taken')

  const refused = await passwordGrant(url, 'alice', 'alice-password')
  t.equal(refused.status, 503)
  t.same(refused.json, { error: 'temporarily_unavailable', error_description: 'too many password checks at once, try again shortly' })
  t.equal(refused.headers.get('retry-after'), '1')

  const browser = new Browser(url)
  const page = await browser.request(`${url}/oauth2/authorise?response_type=code&client_id=spa&redirect_uri=${encodeURIComponent('http://127.0.0.1:3000/cb')}&code_challenge=${'A'.repeat(43)}&code_challenge_method=S256`)
  const busy = await browser.submit(page, { username: 'alice', password: 'alice-password' })
  t.equal(busy.status, 503, 'the login page too')
  t.equal(busy.headers.get('retry-after'), '1')
  t.match(busy.html, /Too many sign-ins at this moment\. Try again in a few seconds\./)

  const service = await postForm(`${url}/oauth2/token`, { grant_type: 'client_credentials', scope: 'api:read' }, { authorization: basic('service', SECRETS.service) })
  t.equal(service.status, 200, 'other grants are served meanwhile')

  slot.release()
  await slot.done
  t.equal(checks.active, 0)
  t.equal((await passwordGrant(url, 'alice', 'alice-password')).status, 200, 'a refusal was not counted as a failed sign-in (loginPerUsername: 1)')
})

t.test('a queued check runs when a slot frees; the one after a full queue is refused', async (t) => {
  const { app, url } = await startIssuer(t, 'redis', 'rateLimit: { passwordHashConcurrency: 1, passwordHashQueue: 1 }\n')
  const checks = app.issuer.users.checks
  const slot = hold(checks)
  const queued = passwordGrant(url, 'alice', 'alice-password')
  t.not(await waitFor(() => checks.queued === 1, 30_000), -1, 'the request waits in the queue')
  t.equal((await passwordGrant(url, 'bob', 'bob-password')).status, 503, 'the queue is full')
  slot.release()
  t.equal((await queued).status, 200, 'served once the slot is free')
  t.equal(checks.active + checks.queued, 0, 'every slot given back')
})

t.test('defaults: the CPU cores available, and a queue of 4', async (t) => {
  const { app } = await startIssuer(t, 'memory')
  t.equal(app.issuer.users.checks.maxActive, availableParallelism())
  t.equal(app.issuer.users.checks.maxQueued, 4)
})

t.test('PasswordCheckLimit', async (t) => {
  const limit = new PasswordCheckLimit(1, 2)
  const order: string[] = []
  const first = hold(limit)
  const second = limit.run(async () => { order.push('second') })
  const third = limit.run(async () => { order.push('third'); throw new Error('boom') })
  t.ok(await limit.run(async () => {}).then(() => false, (err: unknown) => err instanceof PasswordChecksBusy), 'a full queue refuses at once')
  first.release()
  await second
  await t.rejects(third, /boom/, 'a task that throws still hands its slot on')
  t.same(order, ['second', 'third'], 'first in, first out')
  t.equal(limit.active, 0)
  t.equal(await limit.run(async () => 42), 42)
  t.throws(() => new PasswordCheckLimit(0, 1), TypeError)
  t.throws(() => new PasswordCheckLimit(1, -1), TypeError)
})
