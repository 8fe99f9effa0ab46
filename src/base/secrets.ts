import * as core from '@actions/core'

/**
 * The one masker. Every secret input (and each line of a multi-line key) is registered here before
 * anything is logged: the runner masks it in the log, and `mask` takes it out of everything the
 * action writes itself (outputs, the job summary, the results file), which the runner does not mask.
 */
const secrets = new Set<string>()
/** The secrets' encoded forms, masked like the secrets themselves. */
const forms = new Set<string>()
/** Longest first, so a secret that contains another is replaced whole. */
let ordered: string[] = []

/** What a secret becomes in text the action writes, as the runner shows it in the log. */
export const MASK = '***'

/** Encoded forms shorter than this are not masked on their own: they would hide common text. */
const MIN_ENCODED = 6

/** Base64 of `value` as it shows inside a longer base64 text that starts `shift` bytes before it. */
function base64At(value: Buffer, shift: number): string {
  const text = Buffer.concat([Buffer.alloc(shift), value])
    .toString('base64')
    .replace(/=+$/, '')
  // Characters that also hold bits of the bytes before or after the value are left out.
  const first = Math.ceil((shift * 8) / 6)
  const last = Math.floor(((shift + value.length) * 8) / 6)
  return text.slice(first, last)
}

/**
 * The forms a secret takes when a host or a tool re-encodes it (as the runner's masker knows them):
 * JSON-escaped (`"` and `\` in a JSON text), URL-encoded, and base64 at each alignment.
 */
function encodedForms(value: string): string[] {
  const bytes = Buffer.from(value)
  return [JSON.stringify(value).slice(1, -1), encodeURIComponent(value), encodeURI(value), ...[0, 1, 2].map((k) => base64At(bytes, k))]
}

/** Masks `value` in the job log (core.setSecret) and remembers it, and its encoded forms, for `mask`. */
export function registerSecret(value: string): void {
  if (value === '' || secrets.has(value)) return
  core.setSecret(value)
  secrets.add(value)
  for (const form of encodedForms(value)) if (form !== value && form.length >= MIN_ENCODED) forms.add(form)
  ordered = [...secrets, ...forms].sort((a, b) => b.length - a.length)
}

/** A multi-line secret (a key): whole, and each line, as the runner masks line by line. */
export function registerSecretLines(value: string): void {
  if (value.trim() === '') return
  registerSecret(value)
  for (const line of value.split(/\r?\n/)) if (line.trim().length > 0) registerSecret(line.trim())
}

/** Every secret registered so far. */
export function knownSecrets(): ReadonlySet<string> {
  return secrets
}

/**
 * The shortest start of a secret masked at a cut: a character or three match by chance (a key line
 * starting with `x` after a run of `x`), and reveal nothing.
 */
const MIN_CUT = 4

/** The length of the longest end of `text` that is the start of a secret (a secret cut at the end). */
function cutSecretAtEnd(text: string): number {
  let longest = 0
  for (const s of ordered) {
    for (let k = Math.min(s.length - 1, text.length); k > Math.max(longest, MIN_CUT - 1); k--) {
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

/**
 * Fields whose values are the action's own words (a status, a kind), never text from outside: masking
 * a secret that happens to be part of one (`fail`) would break the shape that readers decide on.
 */
const OWN_WORDS: ReadonlySet<string> = new Set(['status', 'phase', 'transport', 'format', 'kind'])

/**
 * A JSON-like value with every string in it masked: for outputs and files. Keys are field names, host
 * and step names (the action's, or checked like inputs), and are kept, as are the OWN_WORDS fields.
 */
export function maskDeep<T>(value: T): T {
  if (ordered.length === 0) return value
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return mask(v)
    if (Array.isArray(v)) return v.map(walk)
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = Object.create(null)
      for (const [k, inner] of Object.entries(v)) out[k] = OWN_WORDS.has(k) ? inner : walk(inner)
      return out
    }
    return v
  }
  return walk(value) as T
}
