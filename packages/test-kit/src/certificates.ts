/**
 * Test certificates, made per run with the `openssl` CLI in a test's directory: a CA, and
 * certificates it signs for 127.0.0.1 and localhost (or intermediate CAs). Clients in the tests
 * trust the CA alone (`ca` on node:https, node:http2, node:tls), so verification stays on.
 * EC P-256 keys: quick to make, and what most certificates are today.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const OPENSSL = process.env.OPENSSL ?? 'openssl'

/** A certificate and its key, as files and as PEM. */
export interface Certificate {
  /** PEM file of the certificate. */
  cert: string
  /** PEM file of its private key. */
  key: string
  /** The certificate's serial number, upper-case hex as X509Certificate gives it. */
  serial: string
  pem: Buffer
}

function openssl (args: string[], cwd: string): void {
  execFileSync(OPENSSL, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** A fresh serial: 16 random bytes, the top bit clear (serials are positive), no leading zero. */
function newSerial (): string {
  const bytes = randomBytes(16)
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x10
  return bytes.toString('hex').toUpperCase()
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']

/** A self-signed CA in `dir` (`<name>.pem`, `<name>.key`). */
export function makeCa (dir: string, name = 'test-ca', cn = 'Gatehouse test CA'): Certificate {
  const serial = newSerial()
  openssl(['req', '-x509', ...KEY, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${cn}`, '-set_serial', `0x${serial}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir)
  const cert = join(dir, `${name}.pem`)
  return { cert, key: join(dir, `${name}.key`), serial, pem: readFileSync(cert) }
}

export interface IssueOptions {
  /** Subject CN; default `name`. */
  cn?: string
  /** An intermediate CA instead of a server certificate. */
  isCa?: boolean
}

/**
 * A certificate signed by `issuer`, in `dir` (`<name>.pem`, `<name>.key`), with a new serial:
 * for a server on 127.0.0.1 / localhost, or an intermediate CA.
 */
export function issueCertificate (issuer: Certificate, dir: string, name: string, options: IssueOptions = {}): Certificate {
  const serial = newSerial()
  const extensions = options.isCa === true
    ? ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']
    : ['basicConstraints=CA:FALSE', 'subjectAltName=IP:127.0.0.1,DNS:localhost', 'extendedKeyUsage=serverAuth', 'keyUsage=critical,digitalSignature']
  writeFileSync(join(dir, `${name}.ext`), `${extensions.join('\n')}\n`)
  openssl(['req', '-new', ...KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${options.cn ?? name}`], dir)
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', issuer.cert, '-CAkey', issuer.key, '-set_serial', `0x${serial}`, '-days', '2',
    '-extfile', `${name}.ext`, '-out', `${name}.pem`], dir)
  const cert = join(dir, `${name}.pem`)
  return { cert, key: join(dir, `${name}.key`), serial, pem: readFileSync(cert) }
}
