/** The page shell shared by every browser flow, and the hidden fields every form carries. */
import { html, raw, type Html } from './html.ts'
import { STYLE } from './style.ts'

/** Renders a whole document around `body`: lang, viewport, the one constant style block, one `<main>`. */
export function layout (o: { title: string, body: Html }): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<title>${o.title} · Gatehouse</title>
<style>${raw(STYLE)}</style>
</head>
<body>
<main>
<p class="brand">Gatehouse</p>
${o.body}
</main>
</body>
</html>
`.value
}

/**
 * Hidden inputs for `hidden`, then the CSRF token. Names the form's own controls use
 * (`reserved`, and `csrf`) are dropped from `hidden`, so a value echoed from a request
 * can never add a second `decision=allow` or a second CSRF token to the form.
 */
export function hiddenFields (hidden: Record<string, string>, csrf: string, reserved: readonly string[]): Html {
  const skip = new Set(['csrf', ...reserved])
  const fields = Object.entries(hidden)
    .filter(([name]) => !skip.has(name))
    .map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">\n`)
  return html`${fields}<input type="hidden" name="csrf" value="${csrf}">\n`
}
