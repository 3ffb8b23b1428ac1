/**
 * What the issuer and the gateway log alike: pino options with request ids and nothing secret.
 * Authorization and cookie headers are redacted; token-bearing query values are masked.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyServerOptions, RawRequestDefaultExpression } from 'fastify'

const SECRET_PARAMS = /([?&](?:code|token|access_token|refresh_token|id_token|id_token_hint|logout_token|client_secret|password|code_verifier|assertion)=)[^&#]*/gi

/** The URL with every secret-bearing query value replaced by `***`. */
export function redactUrl (url: string): string {
  if (!url.includes('?')) return url
  return url.replace(SECRET_PARAMS, '$1***')
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Reuses a sane incoming X-Request-Id, so one id follows the request through, else a new one. */
export function requestId (request: RawRequestDefaultExpression): string {
  const incoming = request.headers['x-request-id']
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
}

/** pino options: level, redaction, and a request serializer that keeps only safe fields. */
export function loggerOptions (level: string): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'], censor: '***' },
    serializers: {
      req: (req: { id: string, method: string, url: string }) => ({ id: req.id, method: req.method, url: redactUrl(req.url) })
    }
  }
}
