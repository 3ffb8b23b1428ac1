/**
 * The demo's client app (`pnpm start` runs it on :3000): the two browser clients of the demo
 * fixture, signed in at the issuer, calling the API through the gateway.
 *
 *   /       demo-web, a confidential client with its own server (web-client.ts)
 *   /spa/   demo-spa, a public client that runs in the browser alone (spa.ts)
 *
 * Every page sends a Content-Security-Policy without 'unsafe-inline': one style sheet and the
 * scripts come from this origin.
 */
import { parse } from 'node:querystring'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { RequestLog } from '../request-log.ts'
import { FAVICON, STYLE } from './assets.ts'
import { issuerMetadata } from './issuer-metadata.ts'
import { layout } from './pages.ts'
import { html } from './html.ts'
import { spaRoutes } from './spa.ts'
import { webClientRoutes } from './web-client.ts'

export interface ClientAppOptions {
  /** Where browsers reach this app (`http://127.0.0.1:3000`): demo-web's redirect URIs are under it. */
  url: string
  /** The issuer's base URL (its `iss`); its metadata is discovered at first use. */
  issuer: string
  /** The gateway's base URL: `/api/hello` and the logout path are called there. */
  gateway: string
  /** The gateway's logout path. Default `/oauth2/logout` (the gateway's default). */
  logoutPath?: string
  /** demo-web's credentials. Default: the demo fixture's. */
  web?: { id: string, secret: string }
  /** demo-spa's client_id. Default `demo-spa`. */
  spaClientId?: string
  /** The scopes both clients ask for. Default `openid profile email api:read`. */
  scope?: string
  /** Fastify logger; default: pino at info. `false` silences it. */
  logger?: FastifyServerOptions['logger']
}

const ASSETS = {
  '/style.css': { type: 'text/css; charset=utf-8', body: STYLE },
  '/favicon.svg': { type: 'image/svg+xml', body: FAVICON }
}

/** The web app's pages: no script at all; forms post here, and /logout continues to the issuer. */
function webCsp (issuer: URL): string {
  return `default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' ${issuer.origin}; frame-ancestors 'none'; base-uri 'none'`
}

function httpUrl (name: string, value: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new TypeError(`${name} must be a URL, got ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`${name} must be an http(s) URL, got ${JSON.stringify(value)}`)
  return url
}

/** Builds the app; never listens. */
export function buildClientApp (options: ClientAppOptions): FastifyInstance {
  const url = httpUrl('url', options.url)
  const issuer = httpUrl('issuer', options.issuer)
  const gateway = httpUrl('gateway', options.gateway)
  const logoutPath = options.logoutPath ?? '/oauth2/logout'
  const scope = options.scope ?? 'openid profile email api:read'
  const metadata = issuerMetadata(issuer)

  const app = Fastify({ logger: options.logger ?? { level: 'info' }, logController: new RequestLog({ hideQuery: true }), bodyLimit: 16 * 1024 })
  // The web app's forms; nothing else has a body.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => { done(null, parse(body as string)) })

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-content-type-options', 'nosniff')
    reply.header('referrer-policy', 'no-referrer')
    if (reply.getHeader('content-security-policy') === undefined && String(reply.getHeader('content-type') ?? '').startsWith('text/html')) {
      reply.header('content-security-policy', webCsp(issuer))
      reply.header('x-frame-options', 'DENY')
    }
  })

  app.get('/healthz', async () => ({ status: 'ok' }))
  for (const [path, asset] of Object.entries(ASSETS)) {
    app.get(path, async (_request, reply) => await reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body))
  }
  app.register(webClientRoutes({ url, issuer, metadata, gateway, logoutPath, client: options.web ?? { id: 'demo-web', secret: 'demo-web-secret' }, scope }))
  app.register(spaRoutes({ metadata, gateway, logoutPath, clientId: options.spaClientId ?? 'demo-spa', scope }))
  app.setNotFoundHandler(async (_request, reply) => {
    return await reply.code(404).type('text/html; charset=utf-8').send(layout({
      title: 'Not found',
      section: 'web',
      body: html`<h1>Not found</h1><p id="status">Nothing here. The demo clients: the <a href="/">web app</a> and the <a href="/spa/">single-page app</a>.</p>`
    }))
  })
  return app
}
