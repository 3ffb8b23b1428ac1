/**
 * What the issuer and the gateway log alike: pino options with request ids and nothing secret.
 * Authorization and cookie headers are redacted; token-bearing query values are masked.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import proxyAddr from '@fastify/proxy-addr'
import type { FastifyServerOptions, RawRequestDefaultExpression } from 'fastify'
import { RequestLogger } from './request-logger.ts'
import { isFromTrustedProxy, type ProxyTrust } from './trust-proxy.ts'

export type { ProxyTrust }

/** Query parameters whose values are secrets (matched on the decoded name, any case). */
const SECRET_PARAMS = new Set([
  'code', 'token', 'access_token', 'refresh_token', 'id_token', 'id_token_hint', 'logout_token',
  'client_secret', 'password', 'code_verifier', 'assertion', 'client_assertion'
])

/**
 * The URL with every secret-bearing query value replaced by `***`. Names are compared once
 * decoded, as the server reads them: `id%5Ftoken%5Fhint` is `id_token_hint`. A name that
 * does not decode has its value masked too (never guess in favour of logging).
 */
export function redactUrl (url: string): string {
  const start = url.indexOf('?')
  if (start === -1) return url
  const hash = url.indexOf('#', start)
  const end = hash === -1 ? url.length : hash
  const query = url.slice(start + 1, end).split('&').map((pair) => {
    const eq = pair.indexOf('=')
    return eq !== -1 && isSecretName(pair.slice(0, eq)) ? `${pair.slice(0, eq)}=***` : pair
  })
  return `${url.slice(0, start + 1)}${query.join('&')}${url.slice(end)}`
}

function isSecretName (raw: string): boolean {
  let name: string
  try {
    name = decodeURIComponent(raw.replace(/\+/g, ' '))
  } catch {
    return true
  }
  return SECRET_PARAMS.has(name.toLowerCase().replace(/\[\]$/, ''))
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * Fastify's `genReqId` and `childLoggerFactory` for a `trustProxy` setting: every request log
 * line carries the request id and the client's IP.
 * - The id is the incoming `X-Request-Id` only when a trusted proxy sent it (and it is sane):
 *   anyone else could pick ids to forge or muddle a trail. Otherwise a new UUID.
 * - The IP is what `request.ip` says: the peer, or with trusted proxies the right-most
 *   X-Forwarded-For entry that is not one of them.
 * `request.log` is a {@link RequestLogger}: it writes what a pino child with these bindings
 * would, without making one per request.
 */
export function requestIdentity (trust: ProxyTrust): Pick<FastifyServerOptions, 'genReqId' | 'childLoggerFactory'> {
  return {
    genReqId: (raw) => {
      const incoming = raw.headers['x-request-id']
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) && isFromTrustedProxy(trust, raw) ? incoming : randomUUID()
    },
    childLoggerFactory: function (logger, bindings, options, raw) {
      // Object.assign rather than a spread: see request-logger.ts (#write).
      return new RequestLogger(logger, Object.assign({}, bindings, { ip: clientIp(trust, raw) }), options)
    }
  }
}

/** The client's IP as `request.ip` gives it: the peer, or past trusted proxies X-Forwarded-For's. */
export function clientIp (trust: ProxyTrust, raw: RawRequestDefaultExpression): string | undefined {
  return trust === false ? raw.socket.remoteAddress : proxyAddr(raw as IncomingMessage, (address) => trust(address))
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
