import * as core from '@actions/core'

/**
 * The one masker. Every secret input (and each line of a multi-line key) is registered here before
 * anything is logged: the runner masks it in the log, and `mask` takes it out of everything the
 * action writes itself (outputs, the job summary, the results file), which the runner does not mask.
 */
const secrets = new Set<string>()
/** Longest first, so a secret that contains another is replaced whole. */
let ordered: string[] = []

/** What a secret becomes in text the action writes, as the runner shows it in the log. */
export const MASK = '***'

/** Masks `value` in the job log (core.setSecret) and remembers it for `mask`. */
export function registerSecret(value: string): void {
  if (value === '') return
  core.setSecret(value)
  if (secrets.has(value)) return
  secrets.add(value)
  ordered = [...secrets].sort((a, b) => b.length - a.length)
}

/** Every secret registered so far. */
export function knownSecrets(): ReadonlySet<string> {
  return secrets
}

/** The length of the longest end of `text` that is the start of a secret (a secret cut at the end). */
function cutSecretAtEnd(text: string): number {
  let longest = 0
  for (const s of ordered) {
    for (let k = Math.min(s.length - 1, text.length); k > longest; k--) {
      if (text.endsWith(s.slice(0, k))) {
        longest = k
        break
      }
    }
  }
  return longest
}

/**
 * `text` with every registered secret replaced by MASK. `cut: true` says the text was cut at its end
 * (a size limit): a piece of a secret left there is masked too, so no secret leaves whole or in part.
 */
export function mask(text: string, options: { cut?: boolean } = {}): string {
  let out = text
  for (const s of ordered) if (out.includes(s)) out = out.split(s).join(MASK)
  if (options.cut) {
    const k = cutSecretAtEnd(out)
    if (k > 0) out = out.slice(0, -k) + MASK
  }
  return out
}

/** A JSON-like value with every string in it masked (keys included): for outputs and files. */
export function maskDeep<T>(value: T): T {
  if (ordered.length === 0) return value
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return mask(v)
    if (Array.isArray(v)) return v.map(walk)
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = Object.create(null)
      for (const [k, inner] of Object.entries(v)) out[mask(k)] = walk(inner)
      return out
    }
    return v
  }
  return walk(value) as T
}
