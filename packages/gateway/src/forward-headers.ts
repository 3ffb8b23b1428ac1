/**
 * What the upstream sees of a request's headers, and what the caller sees of the upstream's.
 * Identity headers are the gateway's alone: a caller's copies are dropped before ours are set.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import type { FastifyRequest } from 'fastify'
import { util } from 'undici'
import type { AccessClaims } from '@gatehouse/fastify-auth'
import { proxyTrust } from '@gatehouse/shared/trust-proxy'
import type { GatewayConfig } from './config.ts'
import { encodeIdentityValue, encodeScope } from './identity-value.ts'

type Headers = IncomingHttpHeaders

/** RFC 9110 7.6.1: hop-by-hop fields, never forwarded (beyond those named in Connection). */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']

/**
 * Never forwarded either. Method overrides: an upstream that honours them would let a request
 * the gateway checked as a GET (scopes per method) act as a DELETE. Expect: the gateway answers
 * `100-continue` itself once the token is checked (expect-continue.ts); undici refuses it.
 */
const NEVER_FORWARDED = ['x-http-method-override', 'x-http-method', 'x-method-override', 'expect']

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
    // HTTP/2's pseudo-header fields (`:path`...) say what the request line says over HTTP/1.1.
    if (name.charCodeAt(0) === 0x3a || dropped.has(name) || named?.has(name) === true || isDropped?.(name) === true) continue
    out[name] = headers[name]
  }
  return out
}

/**
 * Builds the request-header rewriter for one config (names lower-cased once). Identity values
 * are percent-encoded UTF-8 (identity-value.ts). X-Forwarded-For carries the part of the chain
 * the gateway believes: from the client it settled on (`request.ip`) to its peer, so entries a
 * caller made up never reach the upstream; `Forwarded` and `X-Real-IP` pass only from a trusted
 * proxy (`trustProxy`).
 */
export function requestHeaderRewriter (config: GatewayConfig): (request: FastifyRequest, headers: Headers, claims: AccessClaims | null, forwardAuthorization: boolean) => Headers {
  const names = config.identityHeaders
  const subject = names.subject.toLowerCase()
  const clientId = names.clientId.toLowerCase()
  const scope = names.scope.toLowerCase()
  const identity = new Set([subject, clientId, scope])
  const isProxy = proxyTrust(config.trustProxy)
  // Node lower-cases incoming names and joins repeats, so skipping a name drops every copy.
  // The gateway sets the identity and forwarding fields itself; a caller's copies never pass.
  // Host: undici names the upstream's own; the caller's is passed as X-Forwarded-Host.
  const base = [...HOP_BY_HOP, ...NEVER_FORWARDED, ...identity, 'host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id']
  const fromProxy = new Set(base)
  const fromProxyWithAuthorization = new Set([...base, 'authorization'])
  const fromClient = new Set([...base, 'forwarded', 'x-real-ip'])
  const fromClientWithAuthorization = new Set([...fromClient, 'authorization'])
  // CGI-style upstreams (PHP, Django, Rack) read X_Auth_Subject as X-Auth-Subject: underscore
  // spellings of the identity headers are dropped too.
  const isIdentitySpelling = (name: string): boolean => name.includes('_') && identity.has(name.replace(/_/g, '-'))
  return (request, headers, claims, forwardAuthorization) => {
    const peer = request.raw.socket?.remoteAddress ?? ''
    const isFromProxy = isProxy !== false && isProxy(peer)
    const dropped = isFromProxy
      ? forwardAuthorization ? fromProxy : fromProxyWithAuthorization
      : forwardAuthorization ? fromClient : fromClientWithAuthorization
    const out = copyWithout(headers, dropped, isIdentitySpelling)
    if (claims !== null) {
      out[subject] = encodeIdentityValue(claims.sub)
      out[clientId] = encodeIdentityValue(claims.client_id)
      out[scope] = encodeScope(claims.scope)
    }
    // request.ips: the peer, then X-Forwarded-For right to left up to the client (Fastify).
    out['x-forwarded-for'] = isFromProxy ? request.ips?.slice().reverse().join(', ') ?? peer : peer
    out['x-forwarded-proto'] = request.protocol
    // Fastify's request.host honours trustProxy: X-Forwarded-Host from a trusted proxy, else Host.
    out['x-forwarded-host'] = request.host
    out['x-request-id'] = request.id
    return out
  }
}

/** Never passed back to the client either: HTTP/2 forbids it in an answer (RFC 9113 8.2.2). */
const ANSWER_DROPPED = new Set([...HOP_BY_HOP, 'http2-settings'])

/**
 * The upstream's answer headers (undici's raw name/value pairs) as one object for `writeHead`,
 * less hop-by-hop fields and those its Connection field names. Repeated fields (Set-Cookie)
 * become arrays, written back as separate lines. `http2`: the client speaks HTTP/2, where a
 * Host field has no place in an answer.
 */
export function answerHeaders (raw: readonly Buffer[], http2: boolean): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  let connection: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = util.headerNameToString(raw[i]!)
    const value = raw[i + 1]!.toString('latin1')
    if (ANSWER_DROPPED.has(name) || (http2 && name === 'host') || name === '__proto__') {
      if (name === 'connection') connection = connection === undefined ? value : `${connection},${value}`
      continue
    }
    const seen = out[name]
    // Own fields only: `constructor` or `toString` is a field like any other.
    if (seen === undefined || !Object.hasOwn(out, name)) out[name] = value
    else if (Array.isArray(seen)) seen.push(value)
    else out[name] = [String(seen), value]
  }
  if (connection !== undefined) {
    for (const named of connection.toLowerCase().split(',')) Reflect.deleteProperty(out, named.trim())
  }
  return out
}
