/**
 * CSRF protection for the issuer's forms: a signed, httpOnly, SameSite=Strict cookie holds a
 * random token that every form repeats in a hidden field (double submit). The browser flows
 * are also SameSite=Lax-cookie bound, but a form POST needs this proof on top.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { safeEqual } from '../secrets.ts'

const COOKIE = 'gatehouse_csrf'

/** The browser's CSRF token, set now if it has none. */
export function csrfToken (request: FastifyRequest, reply: FastifyReply, secure: boolean): string {
  const existing = readCookie(request)
  if (existing !== undefined) return existing
  const token = randomBytes(24).toString('base64url')
  reply.setCookie(COOKIE, token, { signed: true, httpOnly: true, sameSite: 'strict', secure, path: '/oauth2' })
  return token
}

/** True when the form's `csrf` field matches the cookie. */
export function isCsrfValid (request: FastifyRequest, submitted: string | undefined): boolean {
  const expected = readCookie(request)
  return expected !== undefined && submitted !== undefined && safeEqual(expected, submitted)
}

function readCookie (request: FastifyRequest): string | undefined {
  const raw = request.cookies[COOKIE]
  if (raw === undefined) return undefined
  const unsigned = request.unsignCookie(raw)
  return unsigned.valid && unsigned.value !== null ? unsigned.value : undefined
}
