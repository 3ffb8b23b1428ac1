/**
 * Signing key rotation with the CLI (`gatehouse-issuer keys rotate --config FILE`) under a
 * running issuer and gateway: the new key is published at once, signs after the activation
 * delay, and the gateway accepts its tokens without a restart (an unknown `kid` refetches the
 * JWKS); tokens signed with the old key keep passing. Run on the embedded store (keys in a file)
 * and on Redis (keys shared by every instance).
 *
 * The gateway's `auth.jwksCooldown` is 1 s here: with the default (30 s) a refetch for an unknown
 * kid is refused within 30 s of the last fetch, which at boot is "just now".
 */
import t, { type Test } from 'tap'
import { bearer, decodeJwt, request, serviceToken, startStack, waitFor, type GatewayProcess, type Stack } from './fixtures/processes.ts'

const ACTIVATION_S = 1

const kidOf = (token: string): string => String(decodeJwt(token).header.kid)

async function rotation (t: Test, redis: boolean, secondRotation: boolean): Promise<void> {
  const stack: Stack = await startStack(t, {
    redis,
    issuer: { configure: (config) => { config.keys.activationDelay = ACTIVATION_S; config.keys.refreshInterval = 1 } },
    gateways: [{ configure: (config) => { config.auth.jwksCooldown = 1 } }]
  })
  const { issuer } = stack
  const gateway = stack.gateways[0] as GatewayProcess
  const pid = gateway.pid
  const api = async (token: string): Promise<number> => (await request(`${gateway.url}/api/items`, { headers: bearer(token) })).status

  const oldSeen = await serviceToken(issuer)
  // Signed with the old key, shown to the gateway only after the rotation (no cache entry).
  const oldUnseen = await serviceToken(issuer)
  const oldKid = kidOf(oldSeen)
  t.equal(await api(oldSeen), 200, 'a token of the first key is accepted')

  let started = performance.now()
  const { kid: newKid, output } = await issuer.rotateKeys()
  const cliMs = Math.round(performance.now() - started)
  t.match(output, /published \S+ \(ES256\); signs from /, 'the CLI says what it published')
  t.not(newKid, oldKid, 'a new kid')
  started = performance.now()
  const kids = await waitFor('the new key in the JWKS', async () => {
    const kids = await issuer.jwksKids()
    return kids.includes(newKid) ? kids : undefined
  }, 5000, 50)
  const publishedMs = Math.round(performance.now() - started)
  t.ok(kids.includes(oldKid), 'the old key stays published')

  const fresh = await waitFor('a token signed with the new key', async () => {
    const token = await serviceToken(issuer)
    return kidOf(token) === newKid ? token : undefined
  }, (ACTIVATION_S + 5) * 1000, 50)
  const signingMs = Math.round(performance.now() - started)
  t.comment(`keys rotate CLI ${cliMs} ms; new kid in the JWKS ${publishedMs} ms later; signing with it ${signingMs} ms after the CLI returned (activation delay ${ACTIVATION_S * 1000} ms)`)

  started = performance.now()
  t.equal(await api(fresh), 200, 'the running gateway accepts a token of the new key')
  t.comment(`first request with the new kid (JWKS refetch included): ${(performance.now() - started).toFixed(1)} ms`)
  t.equal(await api(fresh), 200, 'and again (cached)')
  t.equal(await api(oldSeen), 200, 'a token of the old key, seen before, is still accepted')
  t.equal(await api(oldUnseen), 200, 'a token of the old key, never seen before, is still accepted (old key kept)')
  t.equal((await request(`${gateway.url}/api/items`, { method: 'POST', headers: bearer(fresh) })).status, 200, 'POST (api:write) with the new key')

  t.equal(await api(`${fresh.slice(0, -4)}AAAA`), 401, 'a new-key token with a bad signature is still refused')
  if (!secondRotation) return

  // A second rotation: the refetch cooldown (1 s) has passed, so a second unknown kid is fetched too.
  const { kid: thirdKid } = await issuer.rotateKeys()
  const third = await waitFor('a token signed with the third key', async () => {
    const token = await serviceToken(issuer)
    return kidOf(token) === thirdKid ? token : undefined
  }, (ACTIVATION_S + 5) * 1000, 50)
  t.equal(await api(third), 200, 'a second rotation is picked up too')
  t.equal(await api(fresh), 200, 'the second key\'s tokens still pass')
  t.equal(await api(oldUnseen), 200, 'the first key\'s tokens still pass')
  t.equal(gateway.pid, pid, 'all without restarting the gateway')
}

t.test('embedded store (keys in a file)', async (t) => { await rotation(t, false, false) })
t.test('Redis store (keys shared), rotated twice', async (t) => { await rotation(t, true, true) })
