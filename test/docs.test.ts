/**
 * The documents in the repository: every relative link (and its #anchor) resolves, the README
 * links every page of docs/, nothing points readers at documents that are not in the
 * repository, and the license, security policy and changelog are where users look for them.
 */
import t from 'tap'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** Not the repository's own text: dependencies, build output, test output, local data. */
const SKIPPED = new Set(['node_modules', '.git', 'dist', 'coverage', '.tap', '.data', 'tmp', 'results'])

function files (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (SKIPPED.has(entry.name)) return []
    const path = join(dir, entry.name)
    return entry.isDirectory() ? files(path) : entry.isFile() ? [path] : []
  })
}

const read = (path: string): string => readFileSync(path, 'utf8')

/** Markdown without fenced code blocks, whose `#` lines and brackets are not headings or links. */
function prose (markdown: string): string {
  let inFence = false
  return markdown.split('\n').filter((line) => {
    if (/^\s*(```|~~~)/.test(line)) { inFence = !inFence; return false }
    return !inFence
  }).join('\n')
}

/** The anchors GitHub gives a document's headings (lower case, punctuation dropped, -N for repeats). */
function anchors (markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  for (const [, heading = ''] of prose(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const text = heading.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    const base = text.toLowerCase().replace(/[^\p{L}\p{N}\p{M} _-]/gu, '').replace(/ /g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

/** Relative link targets of a document, inline code left out. */
function links (markdown: string): string[] {
  const text = prose(markdown).replace(/`[^`\n]*`/g, '')
  return [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
    .map(([, target = '']) => target)
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target))
}

const documents = files(ROOT).filter((path) => path.endsWith('.md'))

t.test('every relative link in the documents resolves, anchors included', async (t) => {
  t.ok(documents.length >= 8, `found the documents (${documents.length})`)
  for (const doc of documents) {
    for (const target of links(read(doc))) {
      const [path = '', anchor] = target.split('#')
      const file = path === '' ? doc : resolve(dirname(doc), decodeURIComponent(path))
      const where = `${relative(ROOT, doc)} -> ${target}`
      if (!existsSync(file)) { t.fail(`${where}: no such file`); continue }
      if (anchor === undefined) { t.pass(where); continue }
      t.ok(statSync(file).isFile() && anchors(read(file)).has(anchor), `${where}: the anchor exists`)
    }
  }
})

t.test('the README links every page of docs/', async (t) => {
  const readme = read(join(ROOT, 'README.md'))
  const pages = readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md'))
  t.ok(pages.length >= 5, 'docs/ holds the pages')
  for (const page of pages) t.ok(links(readme).includes(`docs/${page}`), `README links docs/${page}`)
})

t.test('nothing points readers at documents outside the repository', async (t) => {
  // Spelled in pieces, so this file does not name them itself.
  const outside = ['PRODUCT', 'STYLE'].map((name) => `${name}.md`).concat(['/work/' + 'shared'])
  const offenders = files(ROOT).filter((path) => {
    if (statSync(path).size > 1024 * 1024) return false
    const text = read(path)
    return outside.some((name) => text.includes(name))
  })
  t.same(offenders.map((path) => relative(ROOT, path)), [], 'no file names them')
})

t.test('license, security policy and changelog', async (t) => {
  const license = read(join(ROOT, 'LICENSE'))
  t.match(license, /^MIT License\n\nCopyright \(c\) 2026 the Gatehouse authors\n/)
  t.match(license, /THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND/)
  t.equal(JSON.parse(read(join(ROOT, 'package.json'))).license, 'MIT', 'package.json says MIT')
  const security = read(join(ROOT, 'SECURITY.md'))
  t.match(security, /## Reporting a vulnerability/)
  t.match(security, /## Supported versions/)
  const changelog = read(join(ROOT, 'CHANGELOG.md'))
  t.match(changelog, /keepachangelog\.com/)
  t.match(changelog, /^## \[Unreleased\]$/m)
  t.match(changelog, /^## \[0\.1\.0\] - 2026-11-21$/m)
})
