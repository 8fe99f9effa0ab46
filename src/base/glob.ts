import { Minimatch, type MinimatchOptions } from 'minimatch'

/**
 * Upload `from`/`exclude` globs and the merge's `files`, matched by minimatch (maintained, and from 11.0
 * free of the backtracking that made `*a*a*a…b` against a long name run for minutes in picomatch 4 and
 * minimatch 3). `*` and `?` stay within a path segment, `**` as a whole segment spans any number of them,
 * `[abc]` is a character class. Options, each for a reason:
 * - `nobrace`: `{a,b}` is literal. Expanding it is exponential in the pattern (`{a,b}` ×30 took 2.4 s
 *   and 250 MB even with brace-expansion's 100,000 cap), and a capped expansion would leave an exclude
 *   silently incomplete; several sources or excludes are a YAML list.
 * - `noext`: `+(a|b)` and kin are literal (`file*(1).txt` is a name people write), as in @actions/glob.
 * - `nocomment`, `nonegate`: a leading `#` or `!` is part of a name; an exclude list says what to leave out.
 * - `dot`: `*` matches `.env` too, so `exclude: "*.env"` leaves out the hidden file it names.
 * - `platform: 'linux'`: paths here always use `/`, so every runner matches alike.
 */
const OPTIONS: MinimatchOptions = { nobrace: true, noext: true, nocomment: true, nonegate: true, dot: true, platform: 'linux' }

/** Whether a path segment or pattern has glob syntax (`*`, `?`, a `[…]` class); a plain name needs no matching. */
export function isGlob(pattern: string): boolean {
  return new Minimatch(pattern, OPTIONS).hasMagic()
}

/**
 * A test for whole `/`-separated relative paths. `**` inside a segment (`**.map`) is refused, naming both
 * readings: minimatch and .gitignore take it as `*.map` (one segment), picomatch and this action's own
 * matcher before took it as any depth; an exclude that silently changed meaning could ship a secret.
 */
export function globMatcher(pattern: string): (path: string) => boolean {
  const inside = pattern.split('/').find((s) => s.includes('**') && s !== '**')
  if (inside !== undefined) {
    const one = inside.replace(/\*{2,}/g, '*')
    throw new Error(
      `'${pattern}': ** spans directories only as a whole path segment; write ${pattern.replace(inside, `**/${one}`)} for any depth, or ${pattern.replace(inside, one)} for one segment`
    )
  }
  const mm = new Minimatch(pattern, OPTIONS)
  return (path) => mm.match(path)
}

/**
 * A test for whether a path or a directory it is in is covered by one of `patterns` (`cache` and
 * `cache/**` both cover `cache/a/b`; `logs/**` covers what is below logs/, not logs itself). A path that
 * is a pattern as written is covered (`site/[lang]` names that directory, as a source that exists as
 * written is taken as written). Each directory is judged once, however many files it holds.
 */
export function globCoverer(patterns: string[]): (path: string) => boolean {
  const literal = new Set(patterns)
  const matchers = patterns.map(globMatcher)
  const dirs = new Map<string, boolean>()
  const covered = (path: string): boolean => {
    const cut = path.lastIndexOf('/')
    if (cut > 0) {
      const parent = path.slice(0, cut)
      let inCovered = dirs.get(parent)
      if (inCovered === undefined) dirs.set(parent, (inCovered = covered(parent)))
      if (inCovered) return true
    }
    return literal.has(path) || matchers.some((match) => match(path))
  }
  return covered
}
