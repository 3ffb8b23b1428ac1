import t from 'tap'
import { readdir, readFile, stat, utimes, writeFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemoryRefreshTokenStore } from '../src/stores/memory.ts'
import { MemoryCodeStore } from '../src/stores/memory-codes.ts'
import { MemoryConsentStore, MemorySessionStore } from '../src/stores/memory-sessions.ts'
import { FileKeyStore } from '../src/stores/file-key-store.ts'
import { MemoryFailureCounter } from '../src/stores/memory-failures.ts'
import { MemoryKeyStore } from './fixtures/memory-key-store.ts'
import { keyStoreContract, makeKeyRecord, refreshTokenStoreContract, TestClock } from './stores-contract.ts'
import { codeStoreContract, makeCode } from './stores-contract-codes.ts'
import { consentStoreContract, sessionStoreContract } from './stores-contract-sessions.ts'
import { failureCounterContract } from './stores-contract-failures.ts'

t.test('MemoryKeyStore', async (t) => {
  keyStoreContract(t, async () => new MemoryKeyStore())
})

t.test('FileKeyStore', async (t) => {
  keyStoreContract(t, async (t) => new FileKeyStore(join(t.testdir(), 'data')))
})

t.test('MemoryRefreshTokenStore', async (t) => {
  const clock = new TestClock()
  refreshTokenStoreContract(t, async () => new MemoryRefreshTokenStore(clock), clock)
})

t.test('MemoryCodeStore', async (t) => {
  const clock = new TestClock()
  codeStoreContract(t, async () => new MemoryCodeStore(clock), clock)
})

t.test('MemorySessionStore', async (t) => {
  const clock = new TestClock()
  sessionStoreContract(t, async () => new MemorySessionStore(clock), clock)
})

t.test('MemoryConsentStore', async (t) => {
  const clock = new TestClock()
  consentStoreContract(t, async () => new MemoryConsentStore(clock), clock)
})

t.test('MemoryFailureCounter', async (t) => {
  const clock = new TestClock()
  failureCounterContract(t, async () => new MemoryFailureCounter(clock), clock)
})

t.test('memory stores drop expired entries, at most once a minute', async (t) => {
  const clock = new TestClock()
  const store = new MemoryCodeStore(clock)
  const code = makeCode(clock)
  await store.save(code) // the first save sweeps (nothing yet)
  clock.advance(2 * 60_000)
  await store.save(makeCode(clock)) // sweeps: drops `code`
  // recordIssued sees entries not dropped yet (as Redis before eviction): here, nothing.
  await store.recordIssued(code.hash, { accessToken: { jti: 'j', expiresAt: clock.now() + 60_000 } })
  t.same(await store.consume(code.hash, code.createdAt), { status: 'invalid' }, 'gone even for a caller whose clock lags')
})

t.test('MemoryRefreshTokenStore defaults to the system clock', async (t) => {
  const store = new MemoryRefreshTokenStore()
  const now = Date.now()
  const family = { id: 'f', clientId: 'c', subject: 's', scope: 'openid', audience: [], createdAt: now, expiresAt: now + 60_000 }
  const token = { hash: 'h', familyId: 'f', issuedAt: now, expiresAt: now + 60_000 }
  await store.create(family, token, { jti: 'j', expiresAt: now + 60_000 })
  t.same(await store.find('f', 'h', Date.now()), { family, token })
})

t.test('FileKeyStore on disk', async (t) => {
  t.test('creates the dir 0700 and the file 0600, leaving no temp or lock file', async (t) => {
    const dir = join(t.testdir(), 'data', 'nested')
    const store = new FileKeyStore(dir)
    await store.addIfEmpty(await makeKeyRecord('a'))
    await store.add(await makeKeyRecord('b'))
    t.equal((await stat(dir)).mode & 0o777, 0o700)
    t.equal((await stat(store.path)).mode & 0o777, 0o600)
    t.same(await readdir(dir), ['signing-keys.json'])
    const content = JSON.parse(await readFile(store.path, 'utf8'))
    t.same(content.keys.map((k: { kid: string }) => k.kid), ['a', 'b'])
  })

  t.test('a new instance, or another one, reads what was written', async (t) => {
    const dir = t.testdir()
    const writer = new FileKeyStore(dir)
    const reader = new FileKeyStore(dir)
    t.same(await reader.list(), [], 'nothing yet')
    const a = await makeKeyRecord('a')
    await writer.addIfEmpty(a)
    t.same(await reader.list(), [a], 'list re-reads the file (a `keys rotate` in another process)')
    t.same(await new FileKeyStore(dir).list(), [a], 'survives a restart')
    t.equal(await reader.addIfEmpty(await makeKeyRecord('b')), false)
  })

  t.test('instances racing on one dir agree on one first key', async (t) => {
    const dir = join(t.testdir(), 'data')
    const records = await Promise.all(['k1', 'k2', 'k3', 'k4', 'k5', 'k6'].map(async (kid) => await makeKeyRecord(kid)))
    const added = await Promise.all(records.map(async (record) => await new FileKeyStore(dir).addIfEmpty(record)))
    t.equal(added.filter(Boolean).length, 1)
    t.same(await new FileKeyStore(dir).list(), [records[added.indexOf(true)]])
  })

  t.test('concurrent add and remove from two instances lose nothing', async (t) => {
    const dir = t.testdir()
    const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map(async (kid) => await makeKeyRecord(kid)))
    await new FileKeyStore(dir).add(a!)
    await new FileKeyStore(dir).add(b!)
    await Promise.all([new FileKeyStore(dir).add(c!), new FileKeyStore(dir).remove(['a']), new FileKeyStore(dir).add(d!)])
    t.same((await new FileKeyStore(dir).list()).map((k) => k.kid).sort(), ['b', 'c', 'd'])
  })

  t.test('waits for a held lock and breaks a stale one', async (t) => {
    const dir = t.testdir()
    const store = new FileKeyStore(dir)
    const lock = `${store.path}.lock`
    await writeFile(lock, '')
    const started = Date.now()
    const released = sleep(100).then(async () => await rm(lock))
    await store.add(await makeKeyRecord('a'))
    await released
    t.ok(Date.now() - started >= 100, 'waited for the holder')

    await writeFile(lock, '')
    const old = new Date(Date.now() - 60_000)
    await utimes(lock, old, old)
    await store.add(await makeKeyRecord('b'))
    t.same((await store.list()).map((k) => k.kid), ['a', 'b'], 'a lock left by a crash does not block forever')
  })

  t.test('a shared secret is a 0600 file, written whole, and read back by every instance', async (t) => {
    const dir = join(t.testdir(), 'data')
    const values = ['v1', 'v2', 'v3', 'v4', 'v5', 'v6']
    const got = await Promise.all(values.map(async (value) => await new FileKeyStore(dir).sharedSecret('cookie', () => value)))
    t.equal(new Set(got).size, 1, 'instances racing on one dir agree')
    t.equal(await readFile(join(dir, 'secret-cookie'), 'utf8'), got[0])
    t.equal((await stat(join(dir, 'secret-cookie'))).mode & 0o777, 0o600)
    t.same(await readdir(dir), ['secret-cookie'], 'no temp file left')
    t.equal(await new FileKeyStore(dir).sharedSecret('cookie', () => 'new'), got[0], 'survives a restart')
  })

  t.test('an empty secret file is an error, not a new secret', async (t) => {
    const dir = t.testdir({ 'secret-cookie': '' })
    await t.rejects(new FileKeyStore(dir).sharedSecret('cookie', () => 'x'), /secret-cookie is empty/)
  })

  t.test('a file that is not a key file is an error, not an empty store', async (t) => {
    const dir = t.testdir({ 'signing-keys.json': '{"something": "else"}' })
    await t.rejects(new FileKeyStore(dir).list(), /not a Gatehouse key file/)
    await t.rejects(new FileKeyStore(dir).addIfEmpty(await makeKeyRecord('a')), /not a Gatehouse key file/)
    await t.rejects(new FileKeyStore(t.testdir({ 'signing-keys.json': '' })).list(), /signing-keys\.json is not valid JSON/)
  })
})
