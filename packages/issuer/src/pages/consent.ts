/** The consent page: the user allows or denies a client's requested scopes. */
import { html } from './html.ts'
import { hiddenFields, layout } from './layout.ts'

/** What the consent page shows and where its form posts. */
export interface ConsentPageOptions {
  /** The client's display name. */
  clientName: string
  /** The signed-in user, shown so they can tell which account they are granting. */
  username: string
  /** The requested scopes; `description` is shown in plain words, `name` when it is empty. */
  scopes: Array<{ name: string, description: string }>
  /** The form's POST target. */
  action: string
  /** Request parameters to carry through the form as hidden inputs. */
  hidden: Record<string, string>
  /** The CSRF token, sent back as `csrf`. */
  csrf: string
}

/** Renders the consent form: hidden fields, `csrf`, and two submit buttons `decision=allow` / `decision=deny`. */
export function consentPage (o: ConsentPageOptions): string {
  const items = o.scopes.map((s) => html`<li>${s.description.trim() === '' ? s.name : s.description}</li>\n`)
  const list = items.length === 0
    ? html`<p>No access to your account data is requested.</p>\n`
    : html`<p class="scopes-intro">This will allow <strong>${o.clientName}</strong> to:</p>
<ul class="scopes">
${items}</ul>
`
  return layout({
    title: `${o.clientName} wants to access your account`,
    body: html`<h1>${o.clientName} wants to access your account</h1>
<p class="lead">Signed in as <strong>${o.username}</strong></p>
${list}<form method="post" action="${o.action}">
${hiddenFields(o.hidden, o.csrf, ['decision'])}<div class="actions">
<button type="submit" name="decision" value="allow" class="primary">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</div>
</form>
<p class="note">If you deny, you go back to ${o.clientName} and nothing is shared.</p>
`
  })
}
