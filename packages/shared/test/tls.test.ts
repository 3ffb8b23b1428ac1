/**
 * `listen.tls`: the files checked at start (every problem one located line naming the field),
 * the chain sent, and the certificate reloaded when its files change, with a bad replacement
 * (a key that does not match, a half-written file) logged while the old certificate keeps
 * serving. Certificates come from the openssl CLI; clients trust the test CA alone.
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { join } from 'node:path'
import { connect, type PeerCertificate } from 'node:tls'
import Fastify, { type FastifyInstance } from 'fastify'
import { issueCertificate, makeCa } from '@gatehouse/test-kit/certificates'
import { ConfigError } from '../src/config-loader.ts'
import { listenerOptions, loadTls, type TlsConfig, type TlsMaterial } from '../src/tls.ts'
import { CertificateReloader } from '../src/tls-reloader.ts'

const dir = t.testdir()
const ca = makeCa(dir)

/** The certificate a NEW connection to `port` is served, verified against the test CA. */
async function served (port: number, trusted: Buffer = ca.pem): Promise<PeerCertificate> {
  const socket = connect({ host: '127.0.0.1', port, ca: trusted, servername: 'localhost' })
  try {
    await once(socket, 'secureConnect')
    return socket.getPeerCertificate()
  } finally {
    socket.destroy()
  }
}

/** GET / over a new https connection; the body. */
async function get (port: number): Promise<string> {
  const req = request({ host: '127.0.0.1', port, path: '/', ca: ca.pem, agent: false })
  req.end()
  const [res] = await once(req, 'response') as [NodeJS.ReadableStream]
  let body = ''
  for await (const chunk of res) body += String(chunk)
  return body
}

/** Polls `probe` every 20 ms until it returns true; fails after 10 s. */
async function until (what: string, probe: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A config file with `tls` at known lines; returns its path. */
function configFile (at: string, tls: TlsConfig): string {
  mkdirSync(at, { recursive: true })
  const file = join(at, 'service.yaml')
  writeFileSync(file, ['listen:', '  port: 8443', '  tls:', `    cert: ${tls.cert}`, `    key: ${tls.key}`, ...(tls.ca === undefined ? [] : [`    ca: ${tls.ca}`]), ''].join('\n'))
  return file
}

/** The one problem loadTls raises, formatted as printed. */
function problemOf (file: string, tls: TlsConfig): string {
  try {
    loadTls(tls, file, {})
  } catch (err) {
    if (err instanceof ConfigError) {
      if (err.problems.length !== 1) throw new Error(`expected one problem: ${err.message}`)
      return err.message
    }
    throw err
  }
  throw new Error('expected a ConfigError')
}

t.test('unusable files at start: one located line naming the field', async (t) => {
  const at = join(dir, 'start')
  mkdirSync(at)
  const good = issueCertificate(ca, at, 'good')
  const other = issueCertificate(ca, at, 'other')
  writeFileSync(join(at, 'half.pem'), readFileSync(good.cert).subarray(0, 200))
  writeFileSync(join(at, 'garbage.pem'), 'not a certificate\n')
  writeFileSync(join(at, 'cut.pem'), Buffer.concat([good.pem, other.pem.subarray(0, 200)]))
  const cases: Array<[string, TlsConfig, RegExp]> = [
    ['a missing certificate', { cert: 'missing.pem', key: 'good.key' }, /^\S+\/start\/service\.yaml:4:11 listen\.tls\.cert cannot read \S+\/start\/missing\.pem: no such file \(ENOENT\)$/],
    ['a missing key', { cert: 'good.pem', key: 'nokey.key' }, /^\S+\/start\/service\.yaml:5:10 listen\.tls\.key cannot read \S+nokey\.key: no such file \(ENOENT\)$/],
    ['a key of another certificate', { cert: 'good.pem', key: 'other.key' }, /^\S+\/start\/service\.yaml:5:10 listen\.tls\.key \S+other\.key does not match the certificate in listen\.tls\.cert \(\S+good\.pem\)$/],
    ['a half-written certificate', { cert: 'half.pem', key: 'good.key' }, /^\S+\/start\/service\.yaml:4:11 listen\.tls\.cert \S+half\.pem is not a PEM certificate \(.+\)$/],
    ['a chain cut short (the certificate whole, the next one half written)', { cert: 'cut.pem', key: 'good.key' }, /^\S+\/start\/service\.yaml:4:11 listen\.tls\.cert \S+cut\.pem cannot be used \(.+\)$/],
    ['a certificate where the key should be', { cert: 'good.pem', key: 'good.pem' }, /^\S+\/start\/service\.yaml:5:10 listen\.tls\.key \S+good\.pem is not an unencrypted PEM private key \(.+\)$/],
    ['a chain file that holds no certificate', { cert: 'good.pem', key: 'good.key', ca: 'garbage.pem' }, /^\S+\/start\/service\.yaml:6:9 listen\.tls\.ca \S+garbage\.pem is not a PEM certificate \(.+\)$/]
  ]
  for (const [what, tls, expected] of cases) {
    const line = problemOf(configFile(at, tls), tls)
    t.match(line, expected, `${what}: ${line}`)
    t.notMatch(line, /\n/, 'one line')
  }
  t.ok(other.serial !== good.serial, 'two certificates')
})

t.test('relative paths are resolved against the config file\'s directory, not the working directory', async (t) => {
  const at = join(dir, 'relative', 'conf')
  mkdirSync(join(at, 'certs'), { recursive: true })
  const leaf = issueCertificate(ca, join(at, 'certs'), 'leaf')
  const tls = { cert: 'certs/leaf.pem', key: './certs/leaf.key' }
  const material = loadTls(tls, configFile(at, tls), {})
  t.equal(material?.files.cert, leaf.cert)
  t.equal(material?.files.key, leaf.key)
  t.ok(material?.cert.equals(leaf.pem), 'read from there')
  t.equal(loadTls(undefined, configFile(at, tls)), undefined, 'no listen.tls: nothing read')
})

/** A Fastify https server for `material` on a free port, answering GET / with "ok". */
async function serve (t: Test, material: TlsMaterial): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify({ ...listenerOptions(material) })
  app.get('/', async () => 'ok')
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => { await app.close() })
  const address = app.server.address()
  return { app, port: typeof address === 'object' && address !== null ? address.port : 0 }
}

t.test('ca: the intermediate certificates are sent after the certificate', async (t) => {
  const at = join(dir, 'chain')
  mkdirSync(at)
  const intermediate = issueCertificate(ca, at, 'intermediate', { isCa: true })
  const leaf = issueCertificate(intermediate, at, 'leaf')
  const alone = await serve(t, loadTls({ cert: 'leaf.pem', key: 'leaf.key' }, configFile(at, { cert: 'leaf.pem', key: 'leaf.key' }), {}) as TlsMaterial)
  await t.rejects(served(alone.port), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'without the chain, a client that trusts the root alone refuses')
  const tls = { cert: 'leaf.pem', key: 'leaf.key', ca: 'intermediate.pem' }
  const chained = await serve(t, loadTls(tls, configFile(at, tls), {}) as TlsMaterial)
  t.equal((await served(chained.port)).serialNumber, leaf.serial, 'with it, the same client verifies the certificate')
  t.equal(await get(chained.port), 'ok')
})

interface Logged { level: 'info' | 'warn', obj: Record<string, unknown>, msg: string }

/** An https server for `name`'s certificate in `at`, its reloader and what the reloader logged. */
async function reloading (t: Test, at: string, pollMs = 60_000): Promise<{ port: number, reloader: CertificateReloader, logged: Logged[], files: { cert: string, key: string } }> {
  const tls = { cert: 'server.pem', key: 'server.key' }
  const material = loadTls(tls, configFile(at, tls), {}) as TlsMaterial
  const { app, port } = await serve(t, material)
  const logged: Logged[] = []
  const log = {
    info: (obj: Record<string, unknown>, msg: string) => { logged.push({ level: 'info', obj, msg }) },
    warn: (obj: Record<string, unknown>, msg: string) => { logged.push({ level: 'warn', obj, msg }) }
  }
  // Polling slowed right down: what is seen within the test's bounds was seen by fs.watch.
  const reloader = new CertificateReloader(app.server, material, log as never, { debounceMs: 20, pollMs })
  reloader.watch()
  t.teardown(() => { reloader.close() })
  logged.length = 0
  return { port, reloader, logged, files: material.files as { cert: string, key: string } }
}

/** Writes `text` over `file` by renaming a new file onto it, as editors and certbot do. */
function replace (file: string, text: Buffer | string): void {
  writeFileSync(`${file}.tmp`, text)
  renameSync(`${file}.tmp`, file)
}

t.test('the certificate is reloaded when its files are replaced; a bad replacement keeps the old one serving', async (t) => {
  const at = join(dir, 'reload')
  mkdirSync(at)
  const first = issueCertificate(ca, at, 'server', { cn: 'first.test' })
  const { port, reloader, logged, files } = await reloading(t, at)
  t.equal((await served(port)).serialNumber, first.serial, 'the first certificate at start')
  t.match(reloader.material.cert.toString(), /BEGIN CERTIFICATE/)

  // A renewal: key first, then the certificate, each renamed into place.
  const second = issueCertificate(ca, at, 'renewed', { cn: 'second.test' })
  replace(files.key, readFileSync(second.key))
  replace(files.cert, second.pem)
  await until('the renewed certificate on a new connection', async () => (await served(port)).serialNumber === second.serial)
  t.equal((await served(port)).subject.CN, 'second.test', 'its CN too')
  t.equal(await get(port), 'ok', 'and it serves requests')
  const reloaded = logged.filter((l) => l.level === 'info')
  t.ok(reloaded.length >= 1 && reloaded.every((l) => l.msg.startsWith('TLS certificate reloaded')), 'an info line per successful reload')
  t.match(reloaded.at(-1)?.obj, { serial: second.serial, subject: 'CN=second.test', reason: 'files changed' }, 'naming the new certificate')

  // A key that belongs to another certificate: refused, logged once, the second keeps serving.
  logged.length = 0
  const stranger = issueCertificate(ca, at, 'stranger')
  replace(files.key, readFileSync(stranger.key))
  await until('the mismatch to be logged', () => logged.some((l) => l.level === 'warn'))
  t.match(logged.find((l) => l.level === 'warn'), { obj: { field: 'listen.tls.key', problem: /does not match the certificate/ }, msg: /the old one keeps serving/ })
  t.equal((await served(port)).serialNumber, second.serial, 'the previous certificate still serves new connections')
  t.equal(await get(port), 'ok')

  // The matching certificate lands, but half written first (a copy in progress, in place).
  logged.length = 0
  writeFileSync(files.cert, stranger.pem.subarray(0, 300))
  await until('the half-written file to be logged', () => logged.some((l) => l.level === 'warn' && l.obj.field === 'listen.tls.cert'))
  t.equal((await served(port)).serialNumber, second.serial, 'still the previous certificate')
  writeFileSync(files.cert, stranger.pem)
  await until('the complete pair to be served', async () => (await served(port)).serialNumber === stranger.serial)
  t.equal(logged.filter((l) => l.level === 'info').length, 1, 'one info line for the good pair')
})

t.test('SIGHUP (force) re-applies unchanged files; an unchanged file is no reload', async (t) => {
  const at = join(dir, 'force')
  mkdirSync(at)
  const only = issueCertificate(ca, at, 'server')
  const { port, reloader, logged } = await reloading(t, at)
  t.equal(reloader.reload('files changed'), false, 'nothing changed: nothing done')
  t.same(logged, [], 'and nothing logged')
  t.equal(reloader.reload('SIGHUP', true), true, 'forced: applied')
  t.match(logged, [{ level: 'info', obj: { reason: 'SIGHUP', serial: only.serial } }])
  t.equal((await served(port)).serialNumber, only.serial)
})

t.test('a Kubernetes secret volume: every file swapped at once through the ..data symlink', async (t) => {
  // The volume: the files in a timestamped directory, `..data` pointing at it, and the names
  // the config uses as symlinks through `..data`. None of those names changes on an update.
  const at = join(dir, 'kubernetes')
  mkdirSync(join(at, '..2025_01_01'), { recursive: true })
  mkdirSync(join(at, '..2025_02_01'))
  const old = issueCertificate(ca, join(at, '..2025_01_01'), 'server')
  const next = issueCertificate(ca, join(at, '..2025_02_01'), 'server')
  symlinkSync('..2025_01_01', join(at, '..data'))
  symlinkSync('..data/server.pem', join(at, 'server.pem'))
  symlinkSync('..data/server.key', join(at, 'server.key'))
  const { port } = await reloading(t, at)
  t.equal((await served(port)).serialNumber, old.serial)
  // What kubelet does: a new directory, then a new `..data` renamed over the old one.
  symlinkSync('..2025_02_01', join(at, '..data_tmp'))
  renameSync(join(at, '..data_tmp'), join(at, '..data'))
  await until('the swapped certificate on a new connection', async () => (await served(port)).serialNumber === next.serial)
})

t.test('a plain http server is refused', async (t) => {
  const app = Fastify()
  const at = join(dir, 'plain')
  mkdirSync(at)
  issueCertificate(ca, at, 'server')
  const tls = { cert: 'server.pem', key: 'server.key' }
  t.throws(() => new CertificateReloader(app.server, loadTls(tls, configFile(at, tls), {}) as TlsMaterial, { info: () => {}, warn: () => {} } as never), { name: 'TypeError' })
})
