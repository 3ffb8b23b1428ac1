/**
 * The README's quick start, and the configuration reference in docs/configuration.md, which
 * must match the schemas (run `pnpm readme` to refresh it).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { CONFIG_DOC, renderConfigDoc } from './fixtures/config-reference.ts'

const README = fileURLToPath(new URL('../README.md', import.meta.url))

t.test('configuration reference is current', async (t) => {
  const text = readFileSync(CONFIG_DOC, 'utf8')
  t.equal(renderConfigDoc(text), text, 'docs/configuration.md is stale: run `pnpm readme`')
})

t.test('the quick start has exactly the two documented lines', async (t) => {
  const text = readFileSync(README, 'utf8')
  t.match(text, /npx -y pnpm@\d+\.\d+\.\d+ install && npx -y pnpm@\d+\.\d+\.\d+ start/)
  t.match(text, /npx -y pnpm@\d+\.\d+\.\d+ install && npx -y pnpm@\d+\.\d+\.\d+ test/)
  const ci = readFileSync(new URL('../.ci/run', import.meta.url), 'utf8')
  const testLine = /npx -y pnpm@\S+ install && npx -y pnpm@\S+ test/.exec(text)?.[0]
  t.ok(testLine !== undefined && ci.includes(testLine), '.ci/run runs the README\'s test line')
  const pinned = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).packageManager
  t.ok(testLine?.includes(pinned.replace('pnpm@', 'pnpm@')), 'the pinned pnpm version')
})
