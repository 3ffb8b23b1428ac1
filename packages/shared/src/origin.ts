/**
 * Web origins (RFC 6454) as CORS configs name them and browsers send them: `scheme://host[:port]`,
 * lower case, no default port, no path. Shared by the issuer's `webOrigins` and the gateway's
 * route `cors.origins`, so both refuse the same mistakes at load time.
 */

/**
 * Why `value` is not an origin a browser would send, or undefined when it is. A configured
 * origin is compared to the `Origin` header byte for byte, so anything the browser would write
 * differently (a trailing slash, upper case, `:443` on https) could never match.
 */
export function originProblem (value: string): string | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return 'is not an origin (scheme://host[:port])'
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an http or https origin'
  if (url.origin !== value) {
    return url.origin === 'null' || url.username !== '' || url.password !== ''
      ? 'is not an origin (scheme://host[:port])'
      : `is not written as browsers send it: ${url.origin} (no path or trailing slash, lower case, no default port)`
  }
  return undefined
}

/** The origin of a URL (`https://app.example/cb` -> `https://app.example`), or undefined. */
export function originOf (url: string): string | undefined {
  try {
    const { origin } = new URL(url)
    return origin === 'null' ? undefined : origin
  } catch {
    return undefined
  }
}
