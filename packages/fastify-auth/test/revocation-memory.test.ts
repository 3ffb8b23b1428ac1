import t from 'tap'
import { randomUUID } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { MemoryRevocationList } from '../src/revocation/index.ts'
import { revocationContract } from './revocation-contract.ts'

revocationContract(t, 'memory', async (clock) => new MemoryRevocationList({ clock }))

t.test('memory: staleness is always 0, ready and close are cheap', async (t) => {
  const list = new MemoryRevocationList()
  await list.ready()
  t.equal(list.staleness, 0)
  await list.close()
  await list.close()
})

t.test('memory: warns once that its state is per process', async (t) => {
  const warnings: string[] = []
  const list = new MemoryRevocationList({ log: { warn: (_obj, msg) => { warnings.push(msg) } } })
  t.teardown(async () => await list.close())
  await list.revoke({ jti: 'a' }, 60)
  t.equal(warnings.length, 1)
  t.match(warnings[0], /per|other processes/)
})

t.test('memory: the periodic sweep drops expired entries on an unref\'d timer', async (t) => {
  let now = 1_000_000
  const list = new MemoryRevocationList({ clock: { now: () => now }, sweepMs: 10 })
  t.teardown(async () => await list.close())
  await list.revoke({ jti: 'a' }, 1)
  now += 1000
  t.equal(list.isRevoked({ jti: 'a' }), false)
  // The sweep runs every 10 ms: wait for it (bounded generously: timers run late on a busy machine).
  const deadline = Date.now() + 30_000
  while (list.size !== 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(list.size, 0, 'swept')
})

t.test('memory: 1,000,000 entries stay well under 200 MB', async (t) => {
  // Heap measured after a forced GC; vm hands us `gc` without a command-line flag.
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  // Ids as they arrive from JSON or Redis: flat 36-character strings (a template literal would
  // build a rope, which is not what the mirror holds in production).
  const buf = Buffer.from(randomUUID())
  const id = (i: number): string => { buf.write(String(i).padStart(8, '0'), 28, 'latin1'); return buf.toString('latin1') }
  gc()
  const before = process.memoryUsage().heapUsed
  const list = new MemoryRevocationList()
  t.teardown(async () => await list.close())
  for (let i = 0; i < 1_000_000; i++) await list.revoke({ jti: id(i) }, 3600)
  gc()
  const mb = (process.memoryUsage().heapUsed - before) / 1e6
  t.comment(`1,000,000 entries: ${mb.toFixed(1)} MB of heap, ids included`)
  t.equal(list.size, 1_000_000)
  t.ok(mb < 150, `${mb.toFixed(1)} MB`)
  t.equal(list.isRevoked({ jti: id(123_456) }), true)
  t.equal(list.isRevoked({ jti: id(1_000_001) }), false)
})
