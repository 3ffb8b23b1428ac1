/** Sends one of the server-rendered pages with a strict, per-page CSP. */
import type { FastifyReply } from 'fastify'
import { STYLE_CSP_SOURCE } from '../pages/index.ts'

/**
 * `formTargets`: origins a form on this page may end up at. Browsers apply form-action to the
 * redirect that follows a POST, so the client's redirect origin must be allowed too.
 */
export async function sendPage (reply: FastifyReply, html: string, status = 200, formTargets: string[] = []): Promise<FastifyReply> {
  const formAction = ["'self'", ...new Set(formTargets)].join(' ')
  return await reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', `default-src 'none'; style-src ${STYLE_CSP_SOURCE}; img-src data:; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`)
    .send(html)
}

export function originOf (uri: string): string {
  const url = new URL(uri)
  return url.origin === 'null' ? `${url.protocol}` : url.origin
}
