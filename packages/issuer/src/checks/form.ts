/**
 * The OAuth endpoints take application/x-www-form-urlencoded bodies only (RFC 6749 3.2,
 * RFC 7009 2.1, RFC 7662 2.1), each parameter at most once.
 */
import type { FastifyRequest } from 'fastify'
import { invalidRequest, OAuthError } from '../errors.ts'

export type FormParams = Readonly<Record<string, string | undefined>>

/** Longest value we accept for any parameter: generous for JWTs, stops abuse early. */
export const MAX_PARAM_LENGTH = 8192

/** Marks bodies whose content type is not a form; the route turns that into invalid_request. */
export const NOT_A_FORM = Symbol('not a form')

/** RFC 8707 2: `resource` may be repeated. (`audience` is the seeds' spelling of it.) */
const REPEATABLE = new Set(['resource', 'audience'])

/** Every `resource` (and `audience`) value of the request, validated. */
export function resourceParams (request: FastifyRequest): string[] {
  const body = (request.method === 'GET' || request.method === 'HEAD' ? request.query : request.body) as Record<string, unknown> | undefined
  if (body === undefined || body === null || typeof body !== 'object') return []
  const values: string[] = []
  for (const name of REPEATABLE) {
    const value = body[name]
    for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
      // Our own forms carry several resources space-separated (a URI holds no spaces).
      for (const one of typeof v === 'string' ? v.split(' ') : [v]) {
        if (typeof one !== 'string' || one === '' || one.length > 1024 || one.includes('#')) {
          // RFC 8707 2: no fragment; we also refuse empty and oversized values.
          throw new OAuthError('invalid_target', 400, `invalid ${name} parameter`)
        }
        values.push(one)
      }
    }
  }
  if (values.length > 16) throw new OAuthError('invalid_target', 400, 'too many resource parameters')
  return [...new Set(values)]
}

const parsed = new WeakMap<object, FormParams>()

export function formParams (request: FastifyRequest): FormParams {
  const body = request.body as unknown
  if (body === NOT_A_FORM || body === undefined || body === null || typeof body !== 'object') {
    throw invalidRequest('the body must be application/x-www-form-urlencoded')
  }
  // Read once per request (the rate-limit key and the route both need it).
  let params = parsed.get(body)
  if (params === undefined) {
    params = singleValued(body as Record<string, unknown>)
    parsed.set(body, params)
  }
  return params
}

/** Parameters of a GET (query) or POST (form) request, each at most once. */
export function requestParams (request: FastifyRequest): FormParams {
  return request.method === 'GET' || request.method === 'HEAD'
    ? singleValued((request.query ?? {}) as Record<string, unknown>)
    : formParams(request)
}

/** Each parameter at most once, none oversized; empty values count as absent (RFC 6749 3.1). */
export function singleValued (body: Record<string, unknown>): FormParams {
  const params: Record<string, string> = Object.create(null)
  for (const [name, value] of Object.entries(body)) {
    if (REPEATABLE.has(name)) continue
    if (typeof value !== 'string') throw invalidRequest(`parameter ${JSON.stringify(name.slice(0, 64))} is repeated`)
    if (value.length > MAX_PARAM_LENGTH) throw invalidRequest(`parameter ${JSON.stringify(name.slice(0, 64))} is too long`)
    // RFC 6749 3.1: parameters sent without a value are treated as omitted.
    if (value !== '') params[name] = value
  }
  return params
}
