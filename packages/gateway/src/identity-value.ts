/**
 * How identity values (a token's `sub`, `client_id`, scope tokens) travel in header fields.
 *
 * A field value is bytes that HTTP reads as ISO-8859-1 at best (RFC 9110 5.5), and undici
 * refuses anything beyond that: `Łukasz` or `山田` cannot be sent as they are, and `josé` would
 * arrive as one Latin-1 byte. So every value is percent-encoded UTF-8 (RFC 3986 2.1):
 *
 * - `%`, space, the control characters, DEL and every non-ASCII character become `%XX` per
 *   UTF-8 byte, with upper-case hex (`Łukasz` -> `%C5%81ukasz`, `100%` -> `100%25`);
 * - every other printable ASCII character (`!` to `~` but `%`) is sent as it is, so the usual
 *   subjects and client ids (`alice`, `demo-web`, a UUID) read the same as before.
 *
 * Because `%` itself is always encoded, the rule is unambiguous: an upstream percent-decodes
 * every value, always (`decodeURIComponent(value)` in JavaScript, `urllib.parse.unquote(value)`
 * in Python; not form decoding, which would turn `+` into a space). The scope header is the
 * token's scope tokens, each encoded so, joined by single spaces: split on spaces, then decode.
 */

/** Values that need no encoding: printable ASCII without `%` (and without space). */
const PLAIN = /^[\x21-\x24\x26-\x7e]*$/
/** The same, with the spaces that separate scope tokens. */
const PLAIN_SCOPE = /^[\x20-\x24\x26-\x7e]*$/

const HEX = '0123456789ABCDEF'

function isPlainByte (byte: number): boolean {
  return byte >= 0x21 && byte <= 0x7e && byte !== 0x25
}

/**
 * One identity value as it is put in a header (see the rule above). A lone UTF-16 surrogate,
 * which no UTF-8 can carry, is sent as U+FFFD (`%EF%BF%BD`); it never throws.
 */
export function encodeIdentityValue (value: string): string {
  if (PLAIN.test(value)) return value
  let out = ''
  for (const byte of Buffer.from(value, 'utf8')) {
    out += isPlainByte(byte) ? String.fromCharCode(byte) : `%${HEX[byte >> 4]}${HEX[byte & 15]}`
  }
  return out
}

/** The scope header: the scope tokens, each encoded, joined by single spaces. */
export function encodeScope (scope: readonly string[]): string {
  const joined = scope.join(' ')
  return PLAIN_SCOPE.test(joined) ? joined : scope.map(encodeIdentityValue).join(' ')
}
