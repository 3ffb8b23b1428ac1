/**
 * Path normalisation, run before any route is matched, so that no spelling of a path can
 * reach a route the caller was not checked for (`/public/../api`, `/public%2f..%2fapi`,
 * `/%61pi`, `//api`, `\api`).
 *
 * The rules (RFC 3986 6.2.2):
 * - Refused (400): a target that is not origin-form (`/...`), an empty segment (`//`), a `.`
 *   or `..` segment, a backslash, a NUL, control or raw non-ASCII character, `%2E` `%2F` `%5C` `%00` and
 *   other encoded control characters, malformed `%` escapes or encoded bytes that are not UTF-8.
 * - Decode once: an encoded unreserved character (`%61` -> `a`) is decoded, so the route is
 *   matched on what the upstream will see; other escapes keep their meaning as data and have
 *   their hex upper-cased. A double-encoded dangerous character (`%252e`) is refused too, in
 *   case an upstream decodes twice.
 * - `"` `<` `>` `` ` `` `{` `}`, which a URI may not hold raw, are escaped.
 * The query string is passed on unchanged.
 */

/** The normalised path and the query (from its `?`, unchanged), or why the target is refused. */
export type PathResult = { path: string, query: string } | { error: string }

const UNRESERVED = /^[A-Za-z0-9_~-]$/
/** `"` `<` `>` `` ` `` `{` `}`: sent escaped (1), by character code. */
const ESCAPED = new Uint8Array(128)
for (const c of '"<>`{}') ESCAPED[c.charCodeAt(0)] = 1
const HEX = /^[0-9A-Fa-f]{2}$/
/** After one decode, these mean an upstream that decodes again would see a separator or NUL. */
const DOUBLE_ENCODED = /%(?:2e|2f|5c|00)/i

/**
 * Normalises the request target's path, or says why it is refused. One pass over the path;
 * a path without `%` is returned as it is (no copy).
 *
 * @param target - the raw request target (`request.raw.url`)
 */
export function normalisePath (target: string): PathResult {
  const q = target.indexOf('?')
  const raw = q < 0 ? target : target.slice(0, q)
  const query = q < 0 ? '' : target.slice(q)
  if (raw.charCodeAt(0) !== 0x2f) return { error: 'the request target must be a path' }
  let out = ''
  let copied = 0
  let segmentStart = 1
  for (let i = 1; i <= raw.length; i++) {
    const c = i < raw.length ? raw.charCodeAt(i) : 0x2f // the end closes the last segment
    if (c === 0x2f) {
      const length = i - segmentStart
      // The last segment may be empty (a trailing slash); any other empty one is `//`.
      if (length === 0 && i < raw.length) return { error: 'the path holds an empty segment (//)' }
      // Encoded dots are refused below, so a dot segment can only be spelled plainly.
      if (raw.charCodeAt(segmentStart) === 0x2e && (length === 1 || (length === 2 && raw.charCodeAt(segmentStart + 1) === 0x2e))) {
        return { error: 'the path holds a . or .. segment' }
      }
      segmentStart = i + 1
      continue
    }
    if (c <= 0x20 || c >= 0x7f || c === 0x5c) return { error: 'the path holds a control character, space, backslash or raw non-ASCII byte' }
    if (c !== 0x25) {
      // Characters a URI may not hold raw (RFC 3986 2.2, 3.3; WHATWG's path set) go on escaped,
      // as a URL parser would write them: a strict upstream refuses them raw.
      if (ESCAPED[c] === 1) {
        out += raw.slice(copied, i) + `%${c.toString(16).toUpperCase()}`
        copied = i + 1
      }
      continue
    }
    const hex = raw.slice(i + 1, i + 3)
    if (!HEX.test(hex)) return { error: 'the path holds a malformed % escape' }
    const code = parseInt(hex, 16)
    if (code === 0x2e || code === 0x2f || code === 0x5c || code < 0x20 || code === 0x7f) {
      return { error: 'the path holds an encoded dot, slash, backslash or control character' }
    }
    const char = String.fromCharCode(code)
    out += raw.slice(copied, i) + (UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`)
    copied = i + 3
    i += 2
  }
  if (copied === 0) return { path: raw, query }
  out += raw.slice(copied)
  try {
    if (DOUBLE_ENCODED.test(decodeURIComponent(out))) return { error: 'the path holds a double-encoded dot, slash, backslash or NUL' }
  } catch {
    return { error: 'the path holds encoded bytes that are not UTF-8' }
  }
  return { path: out, query }
}
