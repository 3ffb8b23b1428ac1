/**
 * The demo resource server: answers every request with JSON `{ method, path, headers }` (so a
 * gateway's forwarding, header rewriting and identity headers can be seen), and receives OIDC
 * Back-Channel Logout tokens at `POST /backchannel-logout`.
 */
import { parse } from 'node:querystring'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import { InvalidLogoutToken, logoutTokenVerifier } from './logout-token.ts'
import { RequestLog } from './request-log.ts'

export interface ResourceServerOptions {
  /** The issuer's base URL (its `iss`); its JWKS is found through discovery. */
  issuer: string
  /** The `aud` expected in logout tokens. Default `demo-api`. */
  audience?: string
  /** Fastify logger; default: pino at info. `false` silences it. */
  logger?: FastifyServerOptions['logger']
  /** ms since the epoch; default Date.now. */
  now?: () => number
}

/** One session ended by a back-channel logout. */
export interface RevokedSession {
  sid: string | null
  sub: string | null
  /** ISO 8601, when the logout token arrived. */
  revokedAt: string
}

export const LOGOUT_PATH = '/backchannel-logout'
/** The most sessions kept for display. */
const MAX_SESSIONS = 1000

function optionsOf (options: ResourceServerOptions): Required<Omit<ResourceServerOptions, 'logger'>> {
  let issuer: URL
  try {
    issuer = new URL(options.issuer)
  } catch {
    throw new TypeError(`issuer must be a URL, got ${JSON.stringify(options.issuer)}`)
  }
  if (issuer.protocol !== 'http:' && issuer.protocol !== 'https:') throw new TypeError('issuer must be an http(s) URL')
  const audience = options.audience ?? 'demo-api'
  if (audience === '') throw new TypeError('audience must not be empty')
  return { issuer: options.issuer, audience, now: options.now ?? Date.now }
}

/** Builds the resource server; never listens. */
export async function buildResourceServer (options: ResourceServerOptions): Promise<FastifyInstance> {
  const opts = optionsOf(options)
  const app = Fastify({ logger: options.logger ?? { level: 'info' }, logController: new RequestLog(), bodyLimit: 64 * 1024 })
  const verify = logoutTokenVerifier({ issuer: opts.issuer, audience: opts.audience, now: opts.now })
  const sessions: RevokedSession[] = []

  // Forms are read (the logout token); any other body is accepted and ignored.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => { done(null, parse(body as string)) })
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => { done(null, undefined) })

  app.post(LOGOUT_PATH, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const body = request.body as Record<string, unknown> | undefined
    const token = typeof body === 'object' && body !== null ? body.logout_token : undefined
    if (typeof token !== 'string' || token === '') {
      return await reply.code(400).send({ error: 'invalid_request', error_description: 'logout_token is required (a form, once)' })
    }
    try {
      const claims = await verify(token)
      sessions.unshift({ sid: claims.sid ?? null, sub: claims.sub ?? null, revokedAt: new Date(opts.now()).toISOString() })
      sessions.length = Math.min(sessions.length, MAX_SESSIONS)
      request.log.info({ sid: claims.sid, sub: claims.sub }, 'back-channel logout')
      // Back-Channel Logout 2.8: 200 once the logout is done.
      return await reply.code(200).send()
    } catch (err) {
      if (err instanceof InvalidLogoutToken) {
        request.log.warn({ reason: err.message }, 'logout token refused')
        return await reply.code(400).send({ error: 'invalid_request', error_description: err.message })
      }
      request.log.warn({ reason: (err as Error).message }, 'logout token not checked')
      return await reply.code(503).send({ error: 'temporarily_unavailable', error_description: 'the issuer could not be reached' })
    }
  })

  app.get(`${LOGOUT_PATH}/sessions`, async (_request, reply) => {
    return await reply.header('cache-control', 'no-store').send({ sessions })
  })

  // Everything else: the echo. The not-found handler catches the methods `all` does not route.
  const echo = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    await reply.code(200).send({ method: request.method, path: request.url, headers: request.headers })
  }
  app.all('*', echo)
  app.setNotFoundHandler(echo)

  return app
}
