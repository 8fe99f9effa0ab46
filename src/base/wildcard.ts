/**
 * OpenSSH's host patterns (`*` any run of characters, `?` one character), as known_hosts and ssh
 * config use them. Matched without regular expressions: a pattern such as `*a*a*a…b` made a
 * backtracking RegExp run for minutes with the event loop blocked. Here the pattern is split at its
 * stars and each piece is found leftmost in turn (leftmost is always right for star-separated pieces),
 * so the work is at most name × pattern length, and both are bounded by their inputs.
 */
export function wildcardMatch(pattern: string, name: string, ignoreCase = true): boolean {
  const p = ignoreCase ? pattern.toLowerCase() : pattern
  const s = ignoreCase ? name.toLowerCase() : name
  const pieces = p.split('*')
  if (pieces.length === 1) return pieceAt(p, s, 0) && p.length === s.length
  const first = pieces[0]
  const last = pieces[pieces.length - 1]
  if (first.length + last.length > s.length) return false
  if (!pieceAt(first, s, 0) || !pieceAt(last, s, s.length - last.length)) return false
  let at = first.length
  const end = s.length - last.length
  for (const piece of pieces.slice(1, -1)) {
    const found = findPiece(piece, s, at, end)
    if (found < 0) return false
    at = found + piece.length
  }
  return true
}

/** Whether `piece` (with `?`) matches `s` at `at`. */
function pieceAt(piece: string, s: string, at: number): boolean {
  if (at < 0 || at + piece.length > s.length) return false
  for (let i = 0; i < piece.length; i++) if (piece[i] !== '?' && piece[i] !== s[at + i]) return false
  return true
}

/** The first position from `from` where `piece` matches and ends by `end`; -1 when none. */
function findPiece(piece: string, s: string, from: number, end: number): number {
  for (let at = from; at + piece.length <= end; at++) if (pieceAt(piece, s, at)) return at
  return -1
}

/** Whether a pattern has wildcards at all (a plain name needs no matching). */
export function hasWildcard(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?')
}
