/**
 * `trustProxy`, shared by the issuer's and the gateway's YAML: which peers may tell us the
 * client's address in X-Forwarded-For (and the scheme and host in X-Forwarded-Proto/-Host).
 *
 * Only a list of addresses is accepted. `true` trusts every entry of the chain, so a caller
 * writes its own address into X-Forwarded-For and picks a fresh per-IP rate-limit key on every
 * request. A hop count cannot tell a proxy from a client that connects directly and sends
 * enough entries of its own; Fastify 5 ignores numbers for that reason (they trust nothing).
 * With a list, the client is the right-most X-Forwarded-For entry that is not a listed proxy,
 * so entries a caller made up, left of the address our proxy saw, are never used.
 */
import { BlockList, isIP } from 'node:net'
import { Type } from '@sinclair/typebox'

/** proxy-addr's named ranges, as Express and Fastify users know them. */
const NAMED: Readonly<Record<string, readonly string[]>> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']
}

export const TrustProxySchema = Type.Union([
  Type.Boolean(),
  Type.Array(Type.String({ minLength: 1 }), { minItems: 1, uniqueItems: true })
], {
  default: false,
  description: 'Proxies in front whose X-Forwarded-For (client IP for rate limits and logs), -Proto and -Host are believed: a list of addresses and CIDRs (`[10.0.0.5, 10.1.0.0/16]`; the names `loopback`, `linklocal` and `uniquelocal` stand for their ranges). The client is the right-most X-Forwarded-For entry that is not a listed proxy. `false`: no proxy, the peer is the client. `true` and hop counts are refused: they let any caller choose its own address.'
})

export type TrustProxyConfig = boolean | readonly string[]

/** Whether a peer address is one of the trusted proxies ({@link proxyTrust}), or false for none. */
export type ProxyTrust = false | ((address: string) => boolean)

/**
 * Whether `raw`'s peer is one of the trusted proxies: what a request says about itself beyond
 * its client's address (its X-Request-Id, its trace context) is believed only then.
 */
export function isFromTrustedProxy (trust: ProxyTrust, raw: { socket: { remoteAddress?: string | undefined } }): boolean {
  return trust !== false && trust(raw.socket.remoteAddress ?? '')
}

/** Why one entry of the list is unusable, or undefined when it is an address, a CIDR or a name. */
function entryProblem (entry: string): string | undefined {
  if (NAMED[entry] !== undefined) return undefined
  const [address = '', bits, ...rest] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) return `"${entry}" is not an IP address, a CIDR or one of ${Object.keys(NAMED).join(', ')}`
  if (bits === undefined) return undefined
  const max = family === 4 ? 32 : 128
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `"${entry}": the prefix length must be 0 to ${max}`
  return undefined
}

/** The config problems of a `trustProxy` value, each with its path under `at`. */
export function checkTrustProxy (value: TrustProxyConfig, at: Array<string | number> = ['trustProxy']): Array<{ path: Array<string | number>, message: string }> {
  if (value === true) {
    return [{ path: at, message: 'true trusts every X-Forwarded-For entry, so any caller picks its own address (and a fresh per-IP rate limit): list the proxies in front instead, e.g. [10.0.0.5] or [uniquelocal]' }]
  }
  if (value === false) return []
  const problems: Array<{ path: Array<string | number>, message: string }> = []
  value.forEach((entry, i) => {
    const problem = entryProblem(entry)
    if (problem !== undefined) problems.push({ path: [...at, i], message: problem })
  })
  return problems
}

/**
 * Fastify's `trustProxy` for a checked value: `false`, or a function telling whether an address
 * is one of the listed proxies (IPv4-mapped IPv6 addresses match their IPv4 rules). The gateway
 * asks the same function whether its peer is a proxy. Throws on a value checkTrustProxy refuses.
 */
export function proxyTrust (value: TrustProxyConfig): ProxyTrust {
  const problem = checkTrustProxy(value)[0]
  if (problem !== undefined) throw new TypeError(`trustProxy: ${problem.message}`)
  if (value === false || value === true) return false
  const list = new BlockList()
  for (const entry of value) {
    for (const range of NAMED[entry] ?? [entry]) {
      const [address = '', bits] = range.split('/')
      const type = isIP(address) === 4 ? 'ipv4' : 'ipv6'
      if (bits === undefined) list.addAddress(address, type)
      else list.addSubnet(address, Number(bits), type)
    }
  }
  return (address) => {
    const family = isIP(address)
    if (family === 0) return false
    try {
      return list.check(address, family === 4 ? 'ipv4' : 'ipv6')
    } catch {
      return false // a scoped IPv6 address (fe80::1%eth0) and the like: not a listed proxy
    }
  }
}
