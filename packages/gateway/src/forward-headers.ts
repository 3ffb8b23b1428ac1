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

/** Fields the Connection field names (RFC 9110 7.6.1), usually none. */
function connectionNamed (headers: Headers): Set<string> | undefined {
  const connection = headers.connection
  if (typeof connection !== 'string') return undefined
  const named = new Set<string>()
  for (const name of connection.toLowerCase().split(',')) named.add(name.trim())
  return named
}

/**
 * A copy of `headers` without `dropped`, hop-by-hop and Connection-named fields. One pass into a
 * fresh object: deleting from the incoming object would change the request's own headers and
 * turn the object into a slow dictionary that the proxy then copies again.
 */
function copyWithout (headers: Headers, dropped: ReadonlySet<string>, isDropped?: (name: string) => boolean): Headers {
  const named = connectionNamed(headers)
  const out: Headers = {}
  for (const name in headers) {
    if (dropped.has(name) || named?.has(name) === true || isDropped?.(name) === true) continue
    out[name] = headers[name]
  }
  return out
}

/** Builds the request-header rewriter for one config (names lower-cased once). */
export function requestHeaderRewriter (config: GatewayConfig): (request: FastifyRequest, headers: Headers, claims: AccessClaims | null, forwardAuthorization: boolean) => Headers {
  const names = config.identityHeaders
  const subject = names.subject.toLowerCase()
  const clientId = names.clientId.toLowerCase()
  const scope = names.scope.toLowerCase()
  const identity = new Set([subject, clientId, scope])
  const trustProxy = config.trustProxy
  // Node lower-cases incoming names and joins repeats, so skipping a name drops every copy.
  // The gateway sets the identity and forwarding fields itself; a caller's copies never pass.
  const base = [...HOP_BY_HOP, ...identity, 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id', ...(trustProxy ? [] : ['forwarded', 'x-real-ip'])]
  const dropped = new Set(base)
  const droppedWithAuthorization = new Set([...base, 'authorization'])
  // CGI-style upstreams (PHP, Django, Rack) read X_Auth_Subject as X-Auth-Subject: underscore
  // spellings of the identity headers are dropped too.
  const isIdentitySpelling = (name: string): boolean => name.includes('_') && identity.has(name.replace(/_/g, '-'))
  return (request, headers, claims, forwardAuthorization) => {
    const out = copyWithout(headers, forwardAuthorization ? dropped : droppedWithAuthorization, isIdentitySpelling)
    if (claims !== null) {
      out[subject] = claims.sub
      out[clientId] = claims.client_id
      out[scope] = claims.scope.join(' ')
    }
    const peer = request.raw.socket.remoteAddress ?? ''
    const incoming = headers['x-forwarded-for']
    out['x-forwarded-for'] = trustProxy && typeof incoming === 'string' && incoming !== '' ? `${incoming}, ${peer}` : peer
    out['x-forwarded-proto'] = request.protocol
    // Fastify's request.host honours trustProxy: X-Forwarded-Host from a trusted proxy, else Host.
    out['x-forwarded-host'] = request.host
    out['x-request-id'] = request.id
    return out
  }
}

const RESPONSE_DROPPED = new Set(HOP_BY_HOP)

/** The upstream's response headers, less hop-by-hop fields. */
export function rewriteResponseHeaders (headers: Headers): Headers {
  return copyWithout(headers, RESPONSE_DROPPED)
}
