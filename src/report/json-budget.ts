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
 * `[part, part, …]` from parts built one at a time, or undefined as soon as they pass `budget`
 * bytes: at most one part more than fits is ever built.
 */
export function jsonArrayWithin(parts: Iterable<string>, budget: number): string | undefined {
  const built: string[] = []
  let bytes = 2
  for (const part of parts) {
    bytes += Buffer.byteLength(part) + (built.length ? 1 : 0)
    if (bytes > budget) return undefined
    built.push(part)
  }
  return `[${built.join(',')}]`
}
