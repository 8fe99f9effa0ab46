import { posix } from 'node:path'
import { isMap, isScalar, isSeq, parseDocument, type YAMLError } from 'yaml'
import type { Host, RunStep, Step, UploadFile, UploadStep } from './settings'
import { shardOf } from './inventory'
import { globMatcher } from '../base/glob'

/** Options a step inherits from the action's inputs when it does not set them. */
export interface StepDefaults {
  env: Record<string, string>
  /** The `capture` input: whether run and local steps keep their stdout. */
  capture: boolean
  /** The `pty` input: whether run steps get a pseudo-terminal. */
  pty: boolean
  timeoutMs: number
  retries: number
  retryDelayMs: number
}

/** Value parsers shared with the inputs, so a step field and an input accept the same text. */
export interface FieldParsers {
  duration: (text: string) => number
  count: (text: string, min: number) => number
  /** Finds an upload's local files now, so a missing source is an input error. */
  upload: (from: string[], to: string, exclude: string[]) => { files: UploadFile[]; dirs: string[] }
  /** Reads a `run-file` script from the workspace now, so a missing file is an input error. */
  file: (path: string) => string
}

function scalar(value: unknown, what: string): string {
  if (typeof value === 'string') return value
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  throw new Error(`${what} must be a single value, not ${JSON.stringify(value)}`)
}

function flag(value: unknown): boolean {
  if (value === true || value === 'true') return true
  if (value === false || value === 'false') return false
  throw new Error(`must be true or false, not ${JSON.stringify(value)}`)
}

/** An upload's `compare`: how a file already on the host is found to be the same, so it is not sent. */
function compareMode(value: unknown): UploadStep['compare'] {
  if (value === 'mtime' || value === 'checksum' || value === 'none') return value
  throw new Error(`must be mtime, checksum or none, not ${JSON.stringify(value)}`)
}

function envMap(value: unknown): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('must be a map of NAME: value')
  const env: Record<string, string> = {}
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`'${name}' is not a variable name`)
    env[name] = v === null ? '' : typeof v === 'boolean' ? String(v) : scalar(v, `'${name}'`)
  }
  return env
}

/** The `run` input as a plan of one step. */
export function singleStep(script: string, defaults: StepDefaults, runFile?: string): RunStep {
  const { pty, ...rest } = defaults
  return { kind: 'run', name: 'run', script, runFile, continueOnError: false, runOnce: false, sudo: false, pty, ...rest }
}

const COMMON_KEYS = ['name', 'env', 'continue-on-error', 'run-once', 'concurrency']
const RETRY_KEYS = ['timeout', 'retries', 'retry-delay']
/** Every key each kind of step takes. */
const KINDS = {
  run: [...COMMON_KEYS, ...RETRY_KEYS, 'run', 'run-file', 'capture', 'sudo', 'pty'],
  reboot: [...COMMON_KEYS, 'reboot'],
  local: [...COMMON_KEYS, ...RETRY_KEYS, 'local', 'capture'],
  upload: [...COMMON_KEYS, ...RETRY_KEYS, 'upload']
} as const
type Kind = keyof typeof KINDS
/** The keys that name a step's kind: a run step's script is inline (`run`) or in a file (`run-file`). */
const KIND_KEYS: Record<Kind, string[]> = { run: ['run', 'run-file'], reboot: ['reboot'], local: ['local'], upload: ['upload'] }
const REBOOT_OPTIONS = ['command', 'timeout', 'boot-id-command', 'test-command', 'pre-delay', 'post-delay']
const UPLOAD_OPTIONS = ['from', 'to', 'mode', 'delete', 'exclude', 'compare']

/** Upload excludes: one glob or a list of them, relative to `from`, each compiled here so a bad one is named. */
function globList(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value]
  return list.map((v) => {
    const glob = scalar(v, 'exclude').trim()
    if (glob === '' || glob.startsWith('/') || glob.split('/').includes('..'))
      throw new Error(`'${glob}' is not a glob relative to from (no leading / or ..)`)
    globMatcher(glob)
    return glob
  })
}

/**
 * Upload sources: one path or glob, or a YAML list of them. A string is one name even with a comma
 * in it (file names may hold commas): several sources are a list, never a split string.
 */
function sourceList(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value]
  if (list.length === 0) throw new Error('is an empty list')
  return list.map((v) => nonEmpty('from')(v))
}

/** A file mode written as octal digits: 644, 0644, "0755". */
function fileMode(value: unknown): number {
  const text = scalar(value, 'mode')
  if (!/^0?[0-7]{3}$/.test(text)) throw new Error(`'${text}' is not an octal file mode such as 0644`)
  return parseInt(text, 8)
}

/** Where `~` stands in wholeTree's comparison: a home directory, as its rules see one. */
const HOME = '/home/~'

/**
 * Whether an upload's `to` is a directory that holds far more than one deploy, or the keys that let
 * anyone in: `/`, a top-level directory (`/etc`, `/var`, `/root`, `/home`…), the login home (`~`, `.`,
 * empty: relative paths are below it), someone's home, or a `.ssh` directory or anything inside one.
 * `delete` there would mirror the upload over authorized_keys or the system. Compared after
 * normalising (`~/.`, `/home//u`, `/home/u/../u` are the home too); the host's real paths are checked
 * at run time.
 */
function wholeTree(to: string): boolean {
  const text = to.trim()
  const tilde = /^~[^/]*/.exec(text)?.[0]
  const absolute = tilde ? `/home/${tilde}${text.slice(tilde.length)}` : text.startsWith('/') ? text : `${HOME}/${text}`
  const path = posix.normalize(absolute).replace(/(.)\/+$/, '$1')
  return /^\/[^/]*$/.test(path) || /^\/(home|Users)\/[^/]+$/.test(path) || path.split('/').includes('.ssh')
}

/** Reads one field of a map, naming the field in any error. */
function reader(raw: Record<string, unknown>, label: string) {
  return <T>(key: string, parse: (v: unknown) => T, fallback: T): T => {
    if (raw[key] === undefined) return fallback
    try {
      return parse(raw[key])
    } catch (err) {
      throw new Error(`${label}, field '${key}': ${(err as Error).message}`)
    }
  }
}

function nonEmpty(what: string): (v: unknown) => string {
  return (v) => {
    const s = scalar(v, what)
    if (s.trim() === '') throw new Error('is empty')
    return s
  }
}

/** A YAML error's code that most often means `key: a value with ': ' in it`, left unquoted. */
const UNQUOTED_COLON = 'BLOCK_AS_IMPLICIT_KEY'

/**
 * A YAML error where the user can find it: the step it is in (number and name) and the key it is
 * under, then the line and column of the steps text (the workflow file's line is not known here).
 */
function yamlError(text: string, doc: ReturnType<typeof parseDocument>, err: YAMLError): string {
  const at = err.pos[0]
  const line = text.slice(0, at).split('\n').length
  const col = at - text.lastIndexOf('\n', at - 1)
  /** The last of `nodes` that starts at or before the error. */
  const lastBefore = <T>(nodes: T[], start: (n: T) => number | undefined): number => {
    let found = -1
    nodes.forEach((n, i) => {
      if ((start(n) ?? Infinity) <= at) found = i
    })
    return found
  }
  const items = isSeq(doc.contents) ? doc.contents.items : []
  const i = lastBefore(items, (item) => (isMap(item) || isScalar(item) || isSeq(item) ? item.range?.[0] : undefined))
  const item = items[i]
  const pairs = isMap(item) ? item.items : []
  const pair = pairs[lastBefore(pairs, (p) => (isScalar(p.key) ? p.key.range?.[0] : undefined))]
  const name = isMap(item) ? item.get('name') : undefined
  const key = isScalar(pair?.key) ? String(pair.key.value) : undefined
  const where =
    i < 0 ? '' : `step ${i + 1}${typeof name === 'string' ? ` ('${name}')` : ''}${key === undefined ? '' : `, field '${key}'`}: `
  const hint = err.code === UNQUOTED_COLON && key !== undefined ? ` (a value with ': ' in it needs quotes, or a block: ${key}: |)` : ''
  return `${where}not valid YAML at line ${line}, column ${col}: ${err.message.split('\n')[0]}${hint}`
}

/**
 * Parses the `steps` YAML list. Every error names the step (number and name) and the field; an
 * unknown key is an error, so a typo never silently does nothing.
 */
export function parseSteps(text: string, defaults: StepDefaults, parsers: FieldParsers): Step[] {
  const parsed = parseDocument(text, { prettyErrors: false })
  if (parsed.errors.length > 0) throw new Error(yamlError(text, parsed, parsed.errors[0]))
  const doc: unknown = parsed.toJS()
  if (!Array.isArray(doc) || doc.length === 0)
    throw new Error('must be a YAML list of steps, each a map with run:, reboot:, local: or upload:')
  const names = new Set<string>()
  const duration = (key: string) => (v: unknown) => parsers.duration(scalar(v, key))
  return doc.map((item: unknown, i): Step => {
    const where = `step ${i + 1}`
    const expected = `a map with one of ${Object.keys(KINDS)
      .map((k) => `${k}:`)
      .join(', ')}`
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw new Error(`${where} must be ${expected}`)
    const raw = item as Record<string, unknown>
    const label = typeof raw.name === 'string' ? `${where} ('${raw.name}')` : where
    const named = Object.values(KIND_KEYS)
      .flat()
      .filter((k) => k in raw)
    if (named.length === 0) {
      const stray = Object.keys(raw).filter((k) => !COMMON_KEYS.includes(k) && !RETRY_KEYS.includes(k))
      const kinds = 'a step has one of run:, run-file:, reboot:, local:, upload:'
      throw new Error(
        stray.length
          ? `${label}: ${stray.map((k) => `${k}:`).join(', ')} are no step's keys; ${kinds}`
          : `${label}: has none of run:, run-file:, reboot:, local:, upload:`
      )
    }
    if (named.length > 1)
      throw new Error(
        `${label}: has both ${named.map((k) => `${k}:`).join(' and ')}; ${named.includes('run-file') && named.includes('run') ? 'give the script inline or in a file, not both' : 'make them separate steps'}`
      )
    const kind = (Object.keys(KIND_KEYS) as Kind[]).find((k) => KIND_KEYS[k].includes(named[0])) as Kind
    const allowed: readonly string[] = KINDS[kind]
    for (const key of Object.keys(raw)) {
      if (!allowed.includes(key)) throw new Error(`${label}: unknown key '${key}' (a ${kind} step takes ${allowed.join(', ')})`)
    }
    const field = reader(raw, label)
    const name = field(
      'name',
      (v) => scalar(v, 'name').trim() || where,
      raw.name === undefined && kind !== 'run' ? `${kind} ${i + 1}` : where
    )
    if (names.has(name)) throw new Error(`${label}: the name '${name}' is used by an earlier step`)
    names.add(name)
    const common = {
      name,
      env: { ...defaults.env, ...field('env', envMap, {}) },
      continueOnError: field('continue-on-error', flag, false),
      runOnce: field('run-once', flag, false),
      concurrency: field('concurrency', (v) => parsers.count(scalar(v, 'concurrency'), 1), undefined)
    }
    const retrying = () => ({
      timeoutMs: field('timeout', duration('timeout'), defaults.timeoutMs),
      retries: field('retries', (v) => parsers.count(scalar(v, 'retries'), 0), defaults.retries),
      retryDelayMs: field('retry-delay', duration('retry-delay'), defaults.retryDelayMs)
    })
    const capture = field('capture', flag, defaults.capture)
    if (kind === 'run') {
      const runFile = field('run-file', nonEmpty('run-file'), undefined)
      const script = runFile === undefined ? field('run', nonEmpty('run'), '') : field('run-file', () => parsers.file(runFile), '')
      return {
        kind,
        ...common,
        ...retrying(),
        script,
        runFile,
        capture,
        sudo: field('sudo', flag, false),
        pty: field('pty', flag, defaults.pty)
      }
    }
    if (kind === 'local') return { kind, ...common, ...retrying(), command: field('local', nonEmpty('local'), ''), capture }
    const options = kind === 'reboot' && raw.reboot === true ? {} : raw[kind]
    const known = kind === 'reboot' ? REBOOT_OPTIONS : UPLOAD_OPTIONS
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new Error(`${label}, field '${kind}': must be ${kind === 'reboot' ? 'true or ' : ''}a map of ${known.join(', ')}`)
    }
    const opts = options as Record<string, unknown>
    for (const key of Object.keys(opts)) {
      if (!known.includes(key)) throw new Error(`${label}, field '${kind}': unknown option '${key}' (it takes ${known.join(', ')})`)
    }
    const option = reader(opts, `${label}, ${kind}`)
    if (kind === 'upload') {
      const from = option('from', sourceList, undefined)
      const to = option('to', nonEmpty('to'), undefined)
      if (from === undefined || to === undefined) throw new Error(`${label}, field 'upload': needs from: and to:`)
      const mirror = option('delete', flag, false)
      if (mirror && wholeTree(to))
        throw new Error(
          `${label}, upload: delete: true would remove everything else in '${to}' (the root, a top-level directory, a home directory or .ssh): upload into a directory of its own`
        )
      const exclude = option('exclude', globList, [])
      const found = option('from', () => parsers.upload(from, to, exclude), { files: [], dirs: [] })
      return {
        kind,
        ...common,
        ...retrying(),
        from: from.join(', '),
        to,
        ...found,
        exclude,
        mode: option('mode', fileMode, undefined),
        delete: mirror,
        compare: option('compare', compareMode, 'mtime')
      }
    }
    return {
      kind,
      ...common,
      command: option('command', nonEmpty('command'), undefined),
      timeoutMs: option('timeout', duration('timeout'), 600_000),
      bootIdCommand: option('boot-id-command', nonEmpty('boot-id-command'), 'cat /proc/sys/kernel/random/boot_id'),
      testCommand: option('test-command', nonEmpty('test-command'), 'true'),
      preDelayMs: option('pre-delay', duration('pre-delay'), 0),
      postDelayMs: option('post-delay', duration('post-delay'), 0)
    }
  })
}

/** A batch size: a count of hosts, or a percentage of all of them. */
export type BatchSize = { count: number } | { percent: number }

/** Parses `N`, `N%` or a list such as `1,25%,100%`. */
export function parseBatchSpec(text: string): BatchSize[] {
  return text.split(',').map((part) => {
    const m = /^\s*(\d+)(%?)\s*$/.exec(part)
    if (!m) throw new Error(`'${part.trim()}' is not a number of hosts or a percentage (1,25%,100%)`)
    const n = Number(m[1])
    if (m[2] === '%') {
      if (n < 1 || n > 100) throw new Error(`${n}% is out of range 1-100%`)
      return { percent: n }
    }
    if (n < 1) throw new Error('a batch needs at least 1 host')
    return { count: n }
  })
}

/** Splits hosts into consecutive batches; the last size repeats. Without a spec, one batch. */
export function planBatches(hosts: Host[], spec: BatchSize[] | undefined): Host[][] {
  if (!spec || hosts.length === 0) return [hosts]
  const batches: Host[][] = []
  for (let start = 0, i = 0; start < hosts.length; i++) {
    const size = spec[Math.min(i, spec.length - 1)]
    const n = 'count' in size ? size.count : Math.max(1, Math.ceil((size.percent * hosts.length) / 100))
    batches.push(hosts.slice(start, start + n))
    start += n
  }
  return batches
}

/** Parses `count` or `N%` of `total` hosts into the number of hosts that may fail. */
export function parseMaxFailures(text: string, total: number): number {
  const m = /^(\d+)(%?)$/.exec(text.trim())
  if (!m) throw new Error(`'${text}' is not a number of hosts or a percentage`)
  const n = Number(m[1])
  if (m[2] !== '%') return n
  if (n > 100) throw new Error(`${n}% is more than 100%`)
  return Math.floor((n * total) / 100)
}

/** Parses `k/n` and keeps every n-th host starting at the k-th: even, stable slices of one list. */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim())
  if (!m) throw new Error(`'${text}' is not k/n, e.g. 1/4`)
  const index = Number(m[1])
  const count = Number(m[2])
  if (count < 1 || index < 1 || index > count) throw new Error(`'${text}': k must be from 1 to n`)
  return { index, count }
}

export function shardHosts(hosts: Host[], shard: { index: number; count: number } | undefined): Host[] {
  return shard ? hosts.filter((h) => shardOf(h.index, shard.count) === shard.index) : hosts
}
