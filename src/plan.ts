import { parse as parseYaml } from 'yaml'
import type { Host, RunStep, Step } from './settings'

/** Options a step inherits from the action's inputs when it does not set them. */
export interface StepDefaults {
  env: Record<string, string>
  timeoutMs: number
  retries: number
  retryDelayMs: number
}

/** Value parsers shared with the inputs, so a step field and an input accept the same text. */
export interface FieldParsers {
  duration: (text: string) => number
  count: (text: string, min: number) => number
}

const RUN_KEYS = ['name', 'run', 'timeout', 'retries', 'retry-delay', 'env', 'continue-on-error', 'run-once']

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
export function singleStep(script: string, defaults: StepDefaults): RunStep {
  return { kind: 'run', name: 'run', script, continueOnError: false, runOnce: false, ...defaults }
}

/**
 * Parses the `steps` YAML list. Every error names the step (number and name) and the field; an
 * unknown key is an error, so a typo never silently does nothing.
 */
export function parseSteps(text: string, defaults: StepDefaults, parsers: FieldParsers): Step[] {
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err) {
    throw new Error(`not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  if (!Array.isArray(doc) || doc.length === 0) throw new Error('must be a YAML list of steps, each a map with run:')
  const names = new Set<string>()
  return doc.map((item: unknown, i) => {
    const where = `step ${i + 1}`
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw new Error(`${where} must be a map with run:`)
    const raw = item as Record<string, unknown>
    const label = typeof raw.name === 'string' ? `${where} ('${raw.name}')` : where
    for (const key of Object.keys(raw)) {
      if (!RUN_KEYS.includes(key)) throw new Error(`${label}: unknown key '${key}' (a step takes ${RUN_KEYS.join(', ')})`)
    }
    const field = <T>(key: string, parse: (v: unknown) => T, fallback: T): T => {
      if (raw[key] === undefined) return fallback
      try {
        return parse(raw[key])
      } catch (err) {
        throw new Error(`${label}, field '${key}': ${(err as Error).message}`)
      }
    }
    const script = field('run', (v) => {
      const s = scalar(v, 'run')
      if (s.trim() === '') throw new Error('is empty')
      return s
    }, undefined)
    if (script === undefined) throw new Error(`${label}: has no run:`)
    const name = field('name', (v) => scalar(v, 'name').trim() || `step ${i + 1}`, `step ${i + 1}`)
    if (names.has(name)) throw new Error(`${label}: the name '${name}' is used by an earlier step`)
    names.add(name)
    return {
      kind: 'run',
      name,
      script,
      env: { ...defaults.env, ...field('env', envMap, {}) },
      timeoutMs: field('timeout', (v) => parsers.duration(scalar(v, 'timeout')), defaults.timeoutMs),
      retries: field('retries', (v) => parsers.count(scalar(v, 'retries'), 0), defaults.retries),
      retryDelayMs: field('retry-delay', (v) => parsers.duration(scalar(v, 'retry-delay')), defaults.retryDelayMs),
      continueOnError: field('continue-on-error', flag, false),
      runOnce: field('run-once', flag, false)
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
  return shard ? hosts.filter((h) => h.index % shard.count === shard.index - 1) : hosts
}
