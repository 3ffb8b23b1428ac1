/** id_token per OIDC Core 1.0 2 and 3.1.3.6 (at_hash), and the claims each scope releases. */
import { createHash } from 'node:crypto'
import type { User } from '../clients.ts'
import type { IssuerContext } from '../context.ts'

/** OIDC Core 5.4: which claims each scope releases. */
const SCOPE_CLAIMS: Record<string, readonly string[]> = {
  profile: ['name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified']
}

export function claimsFor (user: User | undefined, scope: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (user === undefined) return out
  for (const s of scope) {
    for (const name of SCOPE_CLAIMS[s] ?? []) {
      if (user.claims[name] !== undefined) out[name] = user.claims[name]
    }
    if (s === 'profile' && out.preferred_username === undefined) out.preferred_username = user.username
  }
  return out
}

/** Left half of the hash of the access token (SHA-512 for Ed25519, else SHA-256). */
function atHash (accessToken: string, alg: string): string {
  const digest = createHash(alg === 'EdDSA' ? 'sha512' : 'sha256').update(accessToken).digest()
  return digest.subarray(0, digest.length / 2).toString('base64url')
}

export interface IdTokenInput {
  clientId: string
  subject: string
  scope: readonly string[]
  authTime: number
  sid: string
  nonce?: string
  accessToken?: string
}

export async function mintIdToken (ctx: IssuerContext, input: IdTokenInput): Promise<string> {
  const now = Math.floor(ctx.clock.now() / 1000)
  const { alg } = await ctx.keys.signingKey()
  const claims: Record<string, unknown> = {
    sub: input.subject,
    aud: input.clientId,
    azp: input.clientId,
    iat: now,
    exp: now + ctx.config.tokens.idTokenTtl,
    auth_time: input.authTime,
    sid: input.sid,
    ...claimsFor(ctx.users.bySubject(input.subject), input.scope)
  }
  if (input.nonce !== undefined) claims.nonce = input.nonce
  if (input.accessToken !== undefined) claims.at_hash = atHash(input.accessToken, alg)
  // The same key signs at_hash's token and this one, so the alg used above holds.
  return (await ctx.tokens.sign(claims, 'JWT')).token
}
