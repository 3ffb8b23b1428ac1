/**
 * What the upstream sees of a request's headers, and what the caller sees of the upstream's.
 * Identity headers are the gateway's alone: a caller's copies are dropped before ours are set.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyRequest } from 'fastify'
import type { AccessClaims } from '@gatehouse/fastify-auth'
import type { GatewayConfig } from './config.ts'

type Headers = IncomingHttpHeaders

/** RFC 9110 7.6.1: hop-by-hop fields, never forwarded (beyond those named in Connection). */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']

/** Removes hop-by-hop fields and those the Connection field names (RFC 9110 7.6.1). */
function dropHopByHop (headers: Headers): void {
  const connection = headers.connection
  if (typeof connection === 'string') {
    for (const name of connection.toLowerCase().split(',')) delete headers[name.trim()]
  }
  for (const name of HOP_BY_HOP) delete headers[name]
}

/** Builds the request-header rewriter for one config (names lower-cased once). */
export function requestHeaderRewriter (config: GatewayConfig): (request: FastifyRequest, headers: Headers, claims: AccessClaims | null, forwardAuthorization: boolean) => Headers {
  const names = config.identityHeaders
  const subject = names.subject.toLowerCase()
  const clientId = names.clientId.toLowerCase()
  const scope = names.scope.toLowerCase()
  const trustProxy = config.trustProxy
  return (request, headers, claims, forwardAuthorization) => {
    dropHopByHop(headers)
    // Node lower-cases incoming names and joins repeats, so one delete removes every copy.
    delete headers[subject]
    delete headers[clientId]
    delete headers[scope]
    // CGI-style upstreams (PHP, Django, Rack) read X_Auth_Subject as X-Auth-Subject: drop
    // underscore spellings of the identity headers too.
    for (const name of Object.keys(headers)) {
      if (name.includes('_')) {
        const dashed = name.toLowerCase().replace(/_/g, '-')
        if (dashed === subject || dashed === clientId || dashed === scope) delete headers[name]
      }
    }
    if (!forwardAuthorization) delete headers.authorization
    if (claims !== null) {
      headers[subject] = claims.sub
      headers[clientId] = claims.client_id
      headers[scope] = claims.scope.join(' ')
    }
    const peer = request.raw.socket.remoteAddress ?? ''
    const incoming = headers['x-forwarded-for']
    headers['x-forwarded-for'] = trustProxy && typeof incoming === 'string' && incoming !== '' ? `${incoming}, ${peer}` : peer
    headers['x-forwarded-proto'] = request.protocol
    // Fastify's request.host honours trustProxy: X-Forwarded-Host from a trusted proxy, else Host.
    headers['x-forwarded-host'] = request.host
    if (!trustProxy) {
      delete headers.forwarded
      delete headers['x-real-ip']
    }
    headers['x-request-id'] = request.id
    return headers
  }
}

/** The upstream's response headers, less hop-by-hop fields. */
export function rewriteResponseHeaders (headers: Headers): Headers {
  dropHopByHop(headers)
  return headers
}
