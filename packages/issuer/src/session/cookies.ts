/**
 * The issuer's cookies, their names and attributes in one place.
 *
 * - Under https they take the `__Host-` prefix: Secure, `Path=/` and no `Domain`, so a sibling
 *   subdomain can neither set nor overwrite them (RFC 6265bis 4.1.3.2). Give the issuer a host
 *   name of its own: cookies ignore ports, so anything else on that host name sees them.
 *   "Under https" is decided from the config, never from a request's X-Forwarded-Proto: the
 *   issuer listens with TLS itself (`listen.tls`), or its public URL (`issuer`) is https, which
 *   is how it runs behind a TLS-terminating proxy.
 * - Over plain http (the demo, a development setup with the gateway on the same host) no
 *   prefix is possible; they are scoped to `/oauth2`, the issuer's pages, so a gateway on the
 *   same host name never receives them and cannot forward them upstream.
 */
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { IssuerConfig } from '../config.ts'
import type { IssuerContext } from '../context.ts'

/** The path of the issuer's browser pages (sign-in, consent, logout). */
const PAGES_PATH = '/oauth2'

export interface CookiePolicy {
  /** The SSO session cookie's name (`session.cookieName`, prefixed under https). */
  session: string
  /** The pre-session cookie that CSRF tokens are bound to before sign-in. */
  preSession: string
  /** Attributes every issuer cookie shares. */
  attributes: Pick<CookieSerializeOptions, 'secure' | 'path' | 'httpOnly'>
}

/** Whether browsers reach the issuer over https (cookies `Secure`, HSTS). */
export function isSecure (config: Pick<IssuerConfig, 'issuer' | 'listen'>): boolean {
  return config.listen.tls !== undefined || config.issuer.startsWith('https:')
}

export function cookiePolicy (ctx: IssuerContext): CookiePolicy {
  const secure = isSecure(ctx.config)
  const prefix = secure ? '__Host-' : ''
  return {
    session: prefix + ctx.config.session.cookieName,
    preSession: `${prefix}gatehouse_csrf`,
    attributes: { secure, httpOnly: true, path: secure ? '/' : PAGES_PATH }
  }
}
