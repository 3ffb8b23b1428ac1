/** The page shell of the client app (the web app's pages and the single-page app's one page). */
import { html, type Html } from './html.ts'

export type Section = 'web' | 'spa'

export interface LayoutOptions {
  title: string
  /** Which link of the navigation is the current page. */
  section: Section
  body: Html
  /** `<main>`'s attributes (the single-page app's configuration). */
  mainAttributes?: Html
  /** Extra `<head>` content: the single-page app's module script. */
  head?: Html
}

export function layout (o: LayoutOptions): string {
  const current = (section: Section): Html | undefined => section === o.section ? html` aria-current="page"` : undefined
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>${o.title} · Gatehouse demo</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/style.css">
${o.head}
</head>
<body>
<header class="top">
<p class="brand">Gatehouse demo</p>
<nav aria-label="Demo clients"><a href="/"${current('web')}>Web app</a><a href="/spa/"${current('spa')}>Single-page app</a></nav>
</header>
<main${o.mainAttributes}>
${o.body}
</main>
</body>
</html>
`.value
}

/** `2026-12-04T10:15:30Z`: a time as the pages show it (the `datetime` attribute keeps the ms). */
export function shownTime (ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}
