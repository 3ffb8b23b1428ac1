/**
 * The test helpers stay out of what ships (issue 10, item 7): they live in test-kit, which is
 * private, only ever a devDependency, and imported by no package's src/ (what tsc -b builds
 * into dist/).
 */
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const PACKAGES = fileURLToPath(new URL('../../', import.meta.url))

interface Manifest { name: string, private?: boolean, dependencies?: Record<string, string>, peerDependencies?: Record<string, string>, optionalDependencies?: Record<string, string> }

function * sourceFiles (dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield * sourceFiles(path)
    else if (/\.[mc]?[jt]s$/.test(entry.name)) yield path
  }
}

/** What used to sit in shared's src/ (and so in its dist/). */
const helpers = ['redis-harness.ts', 'child-reaper.ts']

const own = JSON.parse(readFileSync(join(PACKAGES, 'test-kit/package.json'), 'utf8')) as Manifest
t.equal(own.private, true, `${own.name} is private`)

for (const dir of readdirSync(PACKAGES).filter((name) => name !== 'test-kit')) {
  const manifest = JSON.parse(readFileSync(join(PACKAGES, dir, 'package.json'), 'utf8')) as Manifest
  t.test(manifest.name, async (t) => {
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies'] as const) {
      t.notOk(Object.hasOwn(manifest[field] ?? {}, own.name), `${own.name} is not in its ${field}`)
    }
    t.same([...sourceFiles(join(PACKAGES, dir, 'src'))].filter((file) => helpers.some((name) => file.endsWith(`/${name}`))), [], `its src/ holds no test helper (${helpers.join(', ')})`)
    const importers = [...sourceFiles(join(PACKAGES, dir, 'src'))].filter((file) => readFileSync(file, 'utf8').includes(own.name))
    t.same(importers.map((file) => file.replace(PACKAGES, 'packages/')), [], `its src/ does not import ${own.name}`)
  })
}
