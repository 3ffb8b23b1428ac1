/**
 * demo-spa: a public client that runs in the browser alone. The server only hands out files: the
 * page (with the issuer's metadata, discovered here), its script (browser/spa.js) and
 * oauth4webapi, the same strict client library the web app uses, as the browser's ES module.
 * Every request with a token goes from the browser straight to the issuer and the gateway,
 * cross-origin (CORS).
 *
 *   GET /spa/, /spa/callback     the page (the script finishes the sign-in at /spa/callback)
 *   GET /spa/app.js              its script
 *   GET /spa/vendor/oauth4webapi.js, /spa/vendor/index.js.map
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { describeError, type MetadataSource } from './issuer-metadata.ts'
import { Html, html } from './html.ts'
import { layout } from './pages.ts'

export interface SpaOptions {
  metadata: MetadataSource
  gateway: URL
  logoutPath: string
  clientId: string
  scope: string
}

const VENDOR = dirname(fileURLToPath(import.meta.resolve('oauth4webapi')))
const FILES = {
  // Plain JavaScript, beside this module in src/ and in dist/ (the build emits it).
  app: readFileSync(new URL('browser/spa.js', import.meta.url)),
  oauth4webapi: readFileSync(join(VENDOR, 'index.js')),
  oauth4webapiMap: readFileSync(join(VENDOR, 'index.js.map'))
}

/**
 * The page's policy: scripts from this origin only (no inline script), requests to the issuer
 * and the gateway only, no forms, no framing, DOM sinks closed to strings (Trusted Types).
 */
export function spaCsp (connectTo: readonly string[]): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src ${connectTo.length === 0 ? "'none'" : connectTo.join(' ')}`,
    "form-action 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "require-trusted-types-for 'script'"
  ].join('; ')
}

/** JSON for a `<script type="application/json">` data block: nothing in it can close the element. */
function jsonBlock (value: unknown): Html {
  return new Html(JSON.stringify(value).replace(/</g, '\\u003c'))
}

const BODY = html`<h1>Demo Single-Page App</h1>
<p class="lead"><code>demo-spa</code>, a public client that runs in your browser alone: this page's script makes the PKCE pair with WebCrypto, sends you to the issuer, exchanges the code with a cross-origin POST to the issuer's token endpoint, and calls the API through the gateway with a Bearer token, cross-origin. The issuer and the gateway allow this origin (CORS); from any other, the browser blocks those requests.</p>
<p class="note" id="memory-note">The tokens live in this page's memory only (no localStorage, sessionStorage or cookie): <strong>a reload, or closing the tab, forgets them</strong> and you sign in again. Only a sign-in on its way (PKCE verifier, state, nonce) waits in sessionStorage during the trip to the issuer, and is removed when you come back.</p>
<noscript><p class="alert">This page needs JavaScript.</p></noscript>
<div class="alert" id="error" role="alert" hidden><strong id="error-step"></strong> failed: <code id="error-name"></code> <span id="error-message"></span>
<p class="note" id="error-hint" hidden>The browser did not let this page read the answer. Usually that is CORS: this page's origin is not among the client's web origins at the issuer, or the gateway route's CORS origins. The browser's console says which.</p></div>
<p class="status" id="status">Loading…</p>
<div class="actions">
<button class="primary" id="sign-in" type="button" hidden>Sign in</button>
<button class="primary" id="call-api" type="button" hidden>Call the API</button>
<button id="refresh" type="button" hidden>Refresh the tokens</button>
<button id="log-out" type="button" hidden>Log out</button>
</div>
<p class="ok" id="refresh-result" hidden>Refreshed (<span id="refresh-count">0</span>): a new access token (see its new expiry below) and a new refresh token; the old one is spent.</p>
<div id="api" hidden>
<h2>The API's answer</h2>
<p>GET /api/hello through the gateway answered HTTP <span id="api-status"></span>.</p>
<pre id="api-result"></pre>
</div>
<div id="token-info" hidden>
<h2>Access token</h2>
<p>Valid until <time id="expires-at"></time>, scope <code id="scope"></code>. In this page's memory only.</p>
<h2>ID token claims</h2>
<table id="claims"><tbody></tbody></table>
</div>
<p class="note">Demo users: alice / alice-password, bob / bob-password. The same with the tokens on a server: the <a href="/">web app</a>.</p>`

export function spaRoutes (o: SpaOptions) {
  const script = async (reply: FastifyReply, body: Buffer, type = 'text/javascript; charset=utf-8'): Promise<FastifyReply> => {
    return await reply.type(type).header('cache-control', 'no-cache').send(body)
  }

  return async function (app: FastifyInstance): Promise<void> {
    app.get('/spa', async (_request, reply) => await reply.redirect('/spa/', 308))

    const page = async (_request: unknown, reply: FastifyReply): Promise<FastifyReply> => {
      reply.type('text/html; charset=utf-8').header('cache-control', 'no-store')
      let metadata
      try {
        metadata = await o.metadata()
      } catch (err) {
        reply.header('content-security-policy', spaCsp([]))
        return await reply.code(503).send(layout({ title: 'Issuer unavailable', section: 'spa', body: html`<h1>Demo Single-Page App</h1><p class="alert" id="error" role="alert">${describeError(err)}. Reload once it runs.</p>` }))
      }
      const connectTo = [...new Set([new URL(metadata.issuer).origin, new URL(metadata.token_endpoint ?? metadata.issuer).origin, o.gateway.origin])]
      reply.header('content-security-policy', spaCsp(connectTo))
      return await reply.send(layout({
        title: 'Demo Single-Page App',
        section: 'spa',
        head: html`<script type="module" src="/spa/app.js"></script>
<script type="application/json" id="issuer-metadata">${jsonBlock(metadata)}</script>`,
        mainAttributes: html` id="app" data-client-id="${o.clientId}" data-scope="${o.scope}" data-gateway="${o.gateway.origin}" data-logout-path="${o.logoutPath}"`,
        body: BODY
      }))
    }
    app.get('/spa/', page)
    app.get('/spa/callback', page)
    app.get('/spa/app.js', async (_request, reply) => await script(reply, FILES.app))
    app.get('/spa/vendor/oauth4webapi.js', async (_request, reply) => await script(reply, FILES.oauth4webapi))
    app.get('/spa/vendor/index.js.map', async (_request, reply) => await script(reply, FILES.oauth4webapiMap, 'application/json; charset=utf-8'))
  }
}
