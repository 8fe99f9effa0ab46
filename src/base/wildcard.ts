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

/**
 * Which prefixes of `path` (segment counts 0…n) a glob can match: `*` and `?` within a segment
 * (wildcardMatch, case-sensitive), `**` as a whole segment any number of segments (zero or more before
 * another segment, one or more at the end, as `cache/**` names what is below cache/), `**x` as `**`
 * then `*x`. A segment-level DP, one pass over the pattern: O(pattern segments × path segments ×
 * segment length), where a backtracking RegExp took seconds per name on `*-*-*-*-*` and a long name.
 */
function globEnds(pattern: string, path: string): boolean[] {
  const names = path.split('/')
  const segments = pattern.split('/').flatMap((s) => (s.startsWith('**') && s !== '**' ? ['**', s.slice(1)] : [s]))
  let ends = names.map((_, j) => j === 0).concat(false)
  segments.forEach((segment, i) => {
    const next = ends.map(() => false)
    if (segment === '**') {
      const last = i === segments.length - 1
      let seen = false
      for (let j = 0; j < ends.length; j++) {
        if (!last && ends[j]) seen = true
        next[j] = seen
        if (last && ends[j]) seen = true
      }
    } else {
      for (let j = 0; j < names.length; j++) next[j + 1] = ends[j] && wildcardMatch(segment, names[j], false)
    }
    ends = next
  })
  return ends
}

/** Whether a glob matches a whole `/`-separated path (see globEnds for the syntax). */
export function globMatch(pattern: string, path: string): boolean {
  return globEnds(pattern, path)[path.split('/').length]
}

/** Whether a glob matches `path` or a directory it is in (`cache` covers `cache/a/b`), in one pass. */
export function globCovers(pattern: string, path: string): boolean {
  return globEnds(pattern, path).some((end, j) => end && j > 0)
}
