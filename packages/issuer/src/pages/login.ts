/** The sign-in page of the authorization flow. */
import { html } from './html.ts'
import { hiddenFields, layout } from './layout.ts'

/** What the sign-in page shows and where its form posts. */
export interface LoginPageOptions {
  /** The client's display name, shown as "to continue to …". */
  clientName: string
  /** The form's POST target. */
  action: string
  /** Request parameters to carry through the form as hidden inputs. */
  hidden: Record<string, string>
  /** The CSRF token, sent back as `csrf`. */
  csrf: string
  /** Prefills the username field (after a failed attempt). */
  username?: string
  /** A message for the user, shown as an alert above the form. */
  error?: string
}

/** Renders the sign-in form: `username`, `password`, the hidden fields and `csrf`, POSTed to `action`. */
export function loginPage (o: LoginPageOptions): string {
  const username = o.username ?? ''
  const error = o.error ?? ''
  // After a failed attempt the fields point at the alert, and the cursor goes where typing resumes.
  const state = error === ''
    ? html` aria-invalid="false"`
    : html` aria-invalid="true" aria-describedby="login-error"`
  const focusUsername = username === '' ? html` autofocus` : ''
  const focusPassword = username === '' ? '' : html` autofocus`
  const alert = error === '' ? '' : html`<p class="alert" role="alert" id="login-error">${error}</p>\n`
  return layout({
    title: 'Sign in',
    body: html`<h1>Sign in</h1>
<p class="lead">to continue to <strong>${o.clientName}</strong></p>
${alert}<form method="post" action="${o.action}">
${hiddenFields(o.hidden, o.csrf, ['username', 'password'])}<div class="field">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="${username}" autocomplete="username" autocapitalize="none" spellcheck="false" required${state}${focusUsername}>
</div>
<div class="field">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required${state}${focusPassword}>
</div>
<div class="actions">
<button type="submit" class="primary">Sign in</button>
</div>
</form>
`
  })
}
