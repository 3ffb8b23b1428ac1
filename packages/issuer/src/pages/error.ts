/** The page for errors that must not go back to a redirect_uri (RFC 6749 4.1.2.1). */
import { html } from './html.ts'
import { layout } from './layout.ts'

/** What went wrong, in plain words. */
export interface ErrorPageOptions {
  /** The heading, e.g. "This app can't sign you in". */
  title: string
  /** One or two sentences saying what happened and what to do. */
  message: string
}

/** Renders an error page. It never redirects: the client or its redirect_uri is not trusted. */
export function errorPage (o: ErrorPageOptions): string {
  return layout({
    title: o.title,
    body: html`<h1>${o.title}</h1>
<p class="message">${o.message}</p>
<p class="note">You can close this window and go back to the app you came from.</p>
`
  })
}
