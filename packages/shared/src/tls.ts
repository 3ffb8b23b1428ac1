/**
 * `listen.tls`, shared by the issuer's and the gateway's YAML: the certificate and key files a
 * service serves https with, read and checked here (at start, and again on every reload by
 * tls-reloader.ts), so a bad pair is one located config error and never a stack trace.
 */
import { readFileSync } from 'node:fs'
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import { dirname, resolve } from 'node:path'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import { Type, type Static } from '@sinclair/typebox'
import { describeReadError, locatedProblem, type LoadOptions } from './config-loader.ts'

const RELOADED = 'Relative to the config file\'s directory; re-read when it changes.'

/** The schema of `listen.tls`; `description` says what https means for that service. */
export const tlsSchema = (description: string) => Type.Object({
  cert: Type.String({ minLength: 1, description: `PEM file: the server certificate, optionally followed by its intermediate CA certificates (a "fullchain" file). ${RELOADED}` }),
  key: Type.String({ minLength: 1, description: `PEM file: the certificate's private key, unencrypted (keep it readable by the service alone). ${RELOADED}` }),
  ca: Type.Optional(Type.String({ minLength: 1, description: `PEM file: intermediate CA certificates, sent after the certificate, for a \`cert\` file that holds the server certificate alone. ${RELOADED}` }))
}, { additionalProperties: false, description })

export type TlsConfig = Static<ReturnType<typeof tlsSchema>>

/** Which file of `listen.tls` a problem is about. */
export type TlsField = 'cert' | 'key' | 'ca'

/** The files of `listen.tls` as absolute paths. */
export interface TlsFiles {
  cert: string
  key: string
  ca: string | undefined
}

/** What a listener serves: the files' contents, checked, and where they came from. */
export interface TlsMaterial {
  files: TlsFiles
  cert: Buffer
  key: Buffer
  ca: Buffer | undefined
}

/** One file of `listen.tls` is unusable; the message reads after the field's path. */
export class TlsFileError extends Error {
  override readonly name = 'TlsFileError'
  readonly field: TlsField

  constructor (field: TlsField, message: string) {
    super(message)
    this.field = field
  }
}

/** `listen.tls` with its paths resolved against `baseDir`, as the issuer's `dataDir` is. */
export function tlsFiles (tls: TlsConfig, baseDir: string): TlsFiles {
  return { cert: resolve(baseDir, tls.cert), key: resolve(baseDir, tls.key), ca: tls.ca === undefined ? undefined : resolve(baseDir, tls.ca) }
}

/** OpenSSL's reason without its code: `PEM routines::bad end line`. */
const reasonOf = (err: unknown): string => String((err as Error).message).replace(/^error:[0-9A-F]+:/, '')

function read (field: TlsField, file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new TlsFileError(field, `cannot read ${file}: ${describeReadError(err)}`)
  }
}

function parseCertificate (field: TlsField, file: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem)
  } catch (err) {
    throw new TlsFileError(field, `${file} is not a PEM certificate (${reasonOf(err)})`)
  }
}

function secureContext (field: TlsField, file: string, options: SecureContextOptions): void {
  try {
    createSecureContext(options)
  } catch (err) {
    throw new TlsFileError(field, `${file} cannot be used (${reasonOf(err)})`)
  }
}

/** The three files' contents, as read. */
export type TlsContents = Pick<TlsMaterial, 'cert' | 'key' | 'ca'>

/**
 * Reads the files as they are.
 * @throws {TlsFileError} naming a file that cannot be read
 */
export function readTlsFiles (files: TlsFiles): TlsContents {
  return { cert: read('cert', files.cert), key: read('key', files.key), ca: files.ca === undefined ? undefined : read('ca', files.ca) }
}

/**
 * Checks that the contents make a usable pair: a PEM certificate, a PEM private key that
 * belongs to it, chains that parse. A file half written (a copy in progress) fails here like
 * any other broken file.
 * @throws {TlsFileError} naming the file at fault
 */
export function checkTls (files: TlsFiles, { cert, key, ca }: TlsContents): TlsMaterial {
  const certificate = parseCertificate('cert', files.cert, cert)
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(key)
  } catch (err) {
    throw new TlsFileError('key', `${files.key} is not an unencrypted PEM private key (${reasonOf(err)})`)
  }
  if (!certificate.checkPrivateKey(privateKey)) throw new TlsFileError('key', `${files.key} does not match the certificate in listen.tls.cert (${files.cert})`)
  if (ca !== undefined) parseCertificate('ca', files.ca ?? '', ca)
  const material = { files, cert, key, ca }
  // The rest of each chain parses too (a truncated intermediate would fail only here).
  secureContext('cert', files.cert, { cert, key })
  if (ca !== undefined) secureContext('ca', files.ca ?? '', secureContextOptions(material))
  return material
}

/**
 * Reads `listen.tls` for main.ts: undefined when it is not set.
 * @throws {ConfigError} located at the field whose file is unusable, e.g.
 *   `gateway.yaml:5:12 listen.tls.key does not match the certificate in listen.tls.cert (...)`
 */
export function loadTls (tls: TlsConfig | undefined, configFile: string, env?: LoadOptions['env']): TlsMaterial | undefined {
  if (tls === undefined) return undefined
  try {
    const files = tlsFiles(tls, dirname(configFile))
    return checkTls(files, readTlsFiles(files))
  } catch (err) {
    if (!(err instanceof TlsFileError)) throw err
    throw locatedProblem(configFile, ['listen', 'tls', err.field], err.message, env)
  }
}

/** The certificate chain (the `ca` file after `cert`) and key, for Node's TLS server. */
export function secureContextOptions (material: TlsMaterial): SecureContextOptions {
  const cert = material.ca === undefined ? material.cert : Buffer.concat([material.cert, Buffer.from('\n'), material.ca])
  return { cert, key: material.key }
}

/** What the logs say of a certificate: enough to tell an old one from its replacement. */
export function describeCertificate (material: TlsMaterial): { subject: string, serial: string, notAfter: string } {
  const certificate = new X509Certificate(material.cert)
  return { subject: certificate.subject.replace(/\n/g, ', '), serial: certificate.serialNumber, notAfter: new Date(certificate.validTo).toISOString() }
}

/**
 * The listener part of Fastify's options: nothing (plain http) without material, else https,
 * or with `http2` HTTP/2 with HTTP/1.1 still offered through ALPN (`allowHTTP1`).
 *
 * Typed as plain-http options on purpose: the apps are written against Fastify's default
 * (node:http) types. Node's https.Server carries http.Server's API, and the HTTP/2
 * compatibility API gives requests and replies the surface of node:http's.
 */
export function listenerOptions (material: TlsMaterial | undefined, http2 = false): { http2?: false } {
  if (material === undefined) return {}
  const https = secureContextOptions(material)
  return (http2 ? { http2: true, https: { ...https, allowHTTP1: true } } : { https }) as unknown as { http2?: false }
}
