/**
 * JSON within a byte budget, measured before it is built: an output of a large fleet is never first
 * built whole (hundreds of MB) only to be found too big.
 */

/** The bytes `text` takes as a JSON string, quotes included, counted without building it. */
export function jsonBytes(text: string): number {
  return 2 + jsonPrefix(text, Infinity).bytes
}

/**
 * The longest start of `text` (its length in UTF-16 units, never inside a surrogate pair) whose JSON
 * escaping takes at most `maxBytes` (quotes not counted), and the bytes it takes.
 */
export function jsonPrefix(text: string, maxBytes: number): { end: number; bytes: number } {
  let bytes = 0
  let i = 0
  while (i < text.length) {
    const c = text.charCodeAt(i)
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    const size = pair
      ? 4
      : c === 0x22 || c === 0x5c || c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d
        ? 2
        : c < 0x20 || (c >= 0xd800 && c <= 0xdfff)
          ? 6 // \u00XX, and a lone surrogate as JSON.stringify writes it
          : c < 0x80
            ? 1
            : c < 0x800
              ? 2
              : 3
    if (bytes + size > maxBytes) break
    bytes += size
    i += pair ? 2 : 1
  }
  return { end: i, bytes }
}

/**
 * The parts in order while they fit in `budget` bytes, each after the first with a `separator`
 * before it; stops at the first that does not fit, so at most one part more than fits is ever built.
 */
export function partsWithin(parts: Iterable<string>, budget: number, separator = ','): { kept: string[]; complete: boolean } {
  const kept: string[] = []
  let bytes = 0
  for (const part of parts) {
    const more = Buffer.byteLength(part) + (kept.length ? Buffer.byteLength(separator) : 0)
    if (bytes + more > budget) return { kept, complete: false }
    kept.push(part)
    bytes += more
  }
  return { kept, complete: true }
}
