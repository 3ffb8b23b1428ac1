/** The RP-Initiated Logout pages: the confirmation, and the page shown once signed out. */
import { html } from './html.ts'
import { hiddenFields, layout } from './layout.ts'

/** Where the sign-out confirmation posts. */
export interface LogoutConfirmPageOptions {
  /** The form's POST target. */
  action: string
  /** Request parameters to carry through the form as hidden inputs. */
  hidden: Record<string, string>
  /** The CSRF token, sent back as `csrf`. */
  csrf: string
  /** Who is signed in in this browser: the person confirms for that account. */
  username?: string
}

/** Renders "Sign out?": a POST form with the hidden fields, `csrf` and a `confirm=yes` button. */
export function logoutConfirmPage (o: LogoutConfirmPageOptions): string {
  const signedInAs = o.username === undefined
    ? ''
    : html`<p>You are signed in as <strong>${o.username}</strong>.</p>
`
  return layout({
    title: 'Sign out?',
    body: html`<h1>Sign out?</h1>
${signedInAs}<p class="lead">You will be signed out here and in the apps that use this sign-in.</p>
<form method="post" action="${o.action}">
${hiddenFields(o.hidden, o.csrf, ['confirm'])}<div class="actions">
<button type="submit" name="confirm" value="yes" class="primary">Sign out</button>
</div>
</form>
`
  })
}

/** Renders "You are signed out", for a logout with no registered place to return to. */
export function loggedOutPage (): string {
  return layout({
    title: 'Signed out',
    body: html`<h1>You are signed out</h1>
<p class="lead">You can close this window.</p>
`
  })
}
