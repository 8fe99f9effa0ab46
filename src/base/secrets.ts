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
/**
 * A text holds a secret of LONG characters or more only if a whole BLOCK-aligned block of the text lies
 * inside the occurrence, and then the block's first PROBE characters are `pieces` entry (the start of
 * some BLOCK-long window of the secret). A text with no aligned probe in `pieces` is searched for the
 * short secrets alone. A key registers ~250 strings (its lines and their encoded forms): searching a
 * 1,024 hosts × 10 steps report's tails for each took a second, the probes a tenth of that.
 */
const BLOCK = 32
const PROBE = 8
const LONG = 2 * BLOCK - 1
const pieces = new Set<string>()
/** The secrets and forms shorter than LONG, longest first. */
let short: string[] = []

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
  const own = encodedForms(value).filter((form) => form !== value && form.length >= MIN_ENCODED)
  for (const form of own) forms.add(form)
  for (const t of [value, ...own]) if (t.length >= LONG) for (let i = 0; i + BLOCK <= t.length; i++) pieces.add(t.slice(i, i + PROBE))
  ordered = [...secrets, ...forms].sort((a, b) => b.length - a.length)
  short = ordered.filter((t) => t.length < LONG)
  maskedBefore = new WeakMap()
}

/** Whether `text` may hold a secret of LONG characters or more (false: it holds none). */
function mayHoldLong(text: string): boolean {
  for (let i = 0; i + BLOCK <= text.length; i += BLOCK) if (pieces.has(text.slice(i, i + PROBE))) return true
  return false
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
  for (const s of mayHoldLong(text) ? ordered : short) if (out.includes(s)) out = out.split(s).join(MASK)
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
 * maskDeep's answers by the object it was given, until another secret is registered: the run's results
 * reach the outputs and the results file, and are masked once (a tenth of a second at 1,024 hosts × 10
 * steps). Results are not changed once the run has them.
 */
let maskedBefore = new WeakMap<object, unknown>()

/**
 * A JSON-like value with every string in it masked: for outputs and files. Keys are field names, host
 * and step names (the action's, or checked like inputs), and are kept, as are the OWN_WORDS fields.
 */
export function maskDeep<T>(value: T): T {
  if (ordered.length === 0) return value
  if (typeof value !== 'object' || value === null) return walkMasked(value) as T
  if (!maskedBefore.has(value)) maskedBefore.set(value, walkMasked(value))
  return maskedBefore.get(value) as T
}

function walkMasked(value: unknown): unknown {
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
  return walk(value)
}
