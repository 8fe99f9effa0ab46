import { hostsWithin } from './results-budget'
import { hostFromJson, type HostJson } from './results-json'
import { CAPTURE_BYTES } from './output'
import { parseHostEntry, shardOf } from '../plan/inventory'
import { skippedResult, type HostResult } from '../base/results'
import { maskDeep } from '../base/secrets'
import type { Workspace } from '../base/workspace'
import { RUN_LINK } from './run-link'

/** Names the layout of a results file; a file without it is not ours (or from another version). */
export const RESULTS_FORMAT = 'ssh-fleet-results/1'

/**
 * What a results file says about the run that wrote it. Read back by the merge, from a file another
 * job (or a pull request) may have forged: every field is checked, sizes and counts included.
 */
export interface RunFacts {
  /** This job's `shard` (`k/n`), or null when it ran the whole inventory. */
  shard: { index: number; count: number } | null
  /** The hosts this job ran, and the whole `hosts` input it is a slice of. */
  hosts: string[]
  inventory: string[]
  /** The plan's steps: the shards of one rollout have the same. */
  plan: Array<{ name: string; kind: string }>
  startedAt: string
  endedAt: string
  actionVersion: string
  /** The link to the log of the job that wrote the file (runLink); files of earlier versions have none. */
  runUrl?: string
}

export interface ResultsFile {
  format: typeof RESULTS_FORMAT
  run: RunFacts
  results: HostJson[]
}

/**
 * The most the merge reads of one results file. A shard's file holds each host's tails and captured
 * stdout (CAPTURE_BYTES a step at most); 64 MiB is hundreds of hosts with captures.
 */
export const RESULTS_FILE_BYTES = 64 * 1024 * 1024
/** A matrix has at most 256 jobs, so a rollout at most 256 shards' files. */
export const RESULTS_FILES_MAX = 256
/** Bounds on what one file may hold: hosts of the inventory, steps and warnings of a host. */
const MAX_HOSTS = 100_000
const MAX_STEPS = 1_000
const MAX_WARNINGS = 1_000
/** A step's name as written in a plan; an error, tail or warning (tails are 8 KiB, errors far less). */
const NAME_CHARS = 1_024
const TEXT_CHARS = 64 * 1024
/** Captured stdout: CAPTURE_BYTES and the note that says it was cut. */
const STDOUT_CHARS = CAPTURE_BYTES + 256
const STEP_KINDS = ['run', 'reboot', 'local', 'upload']

/**
 * The most the merge reads of all files together, checked from their sizes before any is read: 40
 * files under the per-file cap once took 4 GB and the heap. 10,000 hosts with full tails (6 steps,
 * 8 KiB each stream) take about 1 GB escaped; writers shorten to their share (writeResultsFile), so
 * what a rollout's shards write always fits.
 */
export const MERGE_BYTES = 512 * 1024 * 1024

/** Room for the end of a results file (`],"hostsLeftOut":N}`). */
const FILE_END_ROOM = 64

/**
 * Writes the run's results and facts as JSON to `path` through the workspace (a new file renamed over
 * the old one: never written through a link), every secret masked: a host that echoed the password
 * leaves it in no file, nor in the merge job that reads it. The file is kept within this shard's share
 * of MERGE_BYTES (and RESULTS_FILE_BYTES) by the `results` output's shortening, a host a line, so what
 * the action writes the merge always reads; hosts left out (past even that) are counted.
 */
export function writeResultsFile(workspace: Workspace, path: string, facts: RunFacts, results: HostResult[]): void {
  const share = Math.floor((MERGE_BYTES * facts.hosts.length) / Math.max(1, facts.inventory.length))
  const head = `{"format":${JSON.stringify(RESULTS_FORMAT)},\n"run":${JSON.stringify(maskDeep(facts))},\n"results":[\n`
  const budget = Math.min(RESULTS_FILE_BYTES, share) - Buffer.byteLength(head) - FILE_END_ROOM
  const { parts, left } = hostsWithin(maskDeep(results), budget, true, ',\n')
  workspace.writeText(path, `${head}${parts.join(',\n')}\n],\n"hostsLeftOut":${left}}\n`)
}

/** A results file that cannot be merged; the message names the file. */
export class MergeError extends Error {}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Checks untrusted JSON field by field; each throws a message naming the field. */
const check = {
  list(v: unknown, what: string, max: number): unknown[] {
    if (!Array.isArray(v)) throw new Error(`${what} is not a list`)
    if (v.length > max) throw new Error(`${what} has ${v.length} entries, more than ${max}`)
    return v
  },
  text(v: unknown, what: string, max: number): string {
    if (typeof v !== 'string') throw new Error(`${what} is not a string`)
    if (v.length > max) throw new Error(`${what} is ${v.length} characters long, more than ${max}`)
    return v
  },
  /** A host name, with the rules of the `hosts` input: no shell word, no Markdown, no `__proto__`. */
  host(v: unknown, what: string): string {
    const name = check.text(v, what, NAME_CHARS)
    try {
      parseHostEntry(name)
    } catch {
      throw new Error(`${what} ${JSON.stringify(name)} is not a host entry ([user@]host[:port])`)
    }
    return name
  },
  stepName(v: unknown, what: string): string {
    const name = check.text(v, what, NAME_CHARS)
    if (name === '__proto__' || /[\0\r\n]/.test(name)) throw new Error(`${what} ${JSON.stringify(name)} is not a step name`)
    return name
  },
  count(v: unknown, what: string): void {
    if (v !== null && v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v >= 0))
      throw new Error(`${what} is not a number of 0 or more`)
  }
}

/** The run facts of a file, checked: every list bounded, every host a host entry, the plan's steps named. */
function checkRun(run: unknown): RunFacts {
  if (!isObject(run)) throw new Error('"run" is not an object')
  const shard = run.shard
  if (
    shard !== null &&
    !(
      isObject(shard) &&
      Number.isSafeInteger(shard.index) &&
      Number.isSafeInteger(shard.count) &&
      (shard.index as number) >= 1 &&
      (shard.index as number) <= (shard.count as number) &&
      (shard.count as number) <= MAX_HOSTS
    )
  )
    throw new Error('run.shard is not null or {index, count} with 1 ≤ index ≤ count')
  const hosts = check.list(run.hosts, 'run.hosts', MAX_HOSTS).map((h, i) => check.host(h, `run.hosts[${i}]`))
  const inventory = check.list(run.inventory, 'run.inventory', MAX_HOSTS).map((h, i) => check.host(h, `run.inventory[${i}]`))
  const plan = check.list(run.plan, 'run.plan', MAX_STEPS).map((s, i) => {
    if (!isObject(s)) throw new Error(`run.plan[${i}] is not an object`)
    const kind = check.text(s.kind, `run.plan[${i}].kind`, NAME_CHARS)
    if (!STEP_KINDS.includes(kind)) throw new Error(`run.plan[${i}].kind '${kind}' is not one of ${STEP_KINDS.join(', ')}`)
    return { name: check.stepName(s.name, `run.plan[${i}].name`), kind }
  })
  const time = (key: 'startedAt' | 'endedAt'): string => {
    const text = check.text(run[key], `run.${key}`, 64)
    if (!Number.isFinite(Date.parse(text))) throw new Error(`run.${key} is not a time`)
    return text
  }
  const actionVersion = run.actionVersion === undefined ? '' : check.text(run.actionVersion, 'run.actionVersion', 64)
  // Linked from the merged summary: only a link of the shape this action writes.
  const runUrl = run.runUrl === undefined ? undefined : check.text(run.runUrl, 'run.runUrl', NAME_CHARS)
  if (runUrl !== undefined && !RUN_LINK.test(runUrl)) throw new Error('run.runUrl is not a link to a GitHub Actions run')
  return {
    shard: shard === null ? null : { index: shard.index as number, count: shard.count as number },
    hosts,
    inventory,
    plan,
    startedAt: time('startedAt'),
    endedAt: time('endedAt'),
    actionVersion,
    ...(runUrl ? { runUrl } : {})
  }
}

/** One host's result, its shape and sizes checked before hostFromJson reads its fields. */
function checkHost(value: unknown, i: number): HostResult {
  if (!isObject(value)) throw new Error(`results[${i}] is not an object`)
  const host = check.host(value.host, `results[${i}].host`)
  for (const key of ['exitCode', 'durationMs', 'attempts']) check.count(value[key], `${host}: ${key}`)
  for (const key of ['error', 'failedStep'])
    if (value[key] !== null && value[key] !== undefined) check.text(value[key], `${host}: ${key}`, TEXT_CHARS)
  if (value.warnings !== undefined)
    check.list(value.warnings, `${host}: warnings`, MAX_WARNINGS).forEach((w, k) => check.text(w, `${host}: warnings[${k}]`, TEXT_CHARS))
  check.list(value.steps, `${host}: steps`, MAX_STEPS).forEach((s, k) => {
    if (!isObject(s)) throw new Error(`${host}: steps[${k}] is not an object`)
    const at = `${host}, step ${k + 1}`
    check.stepName(s.name, `${at}: name`)
    for (const key of ['exitCode', 'durationMs', 'attempts', 'downtimeMs', 'rebootMs', 'files', 'bytes', 'bytesPerSecond'])
      check.count(s[key], `${at}: ${key}`)
    for (const key of ['error', 'signal', 'stdoutTail', 'stderrTail'])
      if (s[key] !== null && s[key] !== undefined) check.text(s[key], `${at}: ${key}`, TEXT_CHARS)
    if (s.stdout !== undefined) check.text(s.stdout, `${at}: stdout`, STDOUT_CHARS)
  })
  return hostFromJson(value)
}

/** Parses one results file, refusing anything that is not one of ours: every field, size and count checked. */
function parseResultsFile(path: string, text: string): { run: RunFacts; results: HostResult[] } {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new MergeError(`${path}: not JSON (${(err as Error).message})`)
  }
  if (!isObject(doc) || doc.format !== RESULTS_FORMAT) {
    throw new MergeError(
      `${path}: not an ssh-fleet results file (no "format": "${RESULTS_FORMAT}"); only files written by the results-file input can be merged`
    )
  }
  let run: RunFacts
  try {
    run = checkRun(doc.run)
  } catch (err) {
    throw new MergeError(`${path}: malformed results file: ${(err as Error).message}`)
  }
  try {
    return { run, results: check.list(doc.results, 'results', MAX_HOSTS).map(checkHost) }
  } catch (err) {
    throw new MergeError(`${path}: malformed host result: ${(err as Error).message}`)
  }
}

/** The merged fleet: every host of the inventory once, in its order, and what was missing. */
export interface Merged {
  results: HostResult[]
  plan: RunFacts['plan']
  /** Shards of `k/n` that wrote no file, e.g. `2/3`. */
  missingShards: string[]
  /** Each file's shard (`k/n`, or null) and the link to its job's log, in the order read. */
  runs: Array<{ shard: string | null; runUrl?: string }>
  files: number
  startedAt: number
  endedAt: number
}

/**
 * Merges the results files of one rollout's shards. They must share the plan and the inventory, and
 * their hosts must be disjoint; a shard with no file leaves its hosts `skipped` with why.
 */
export function mergeResults(files: Iterable<{ path: string; text: string }>): Merged {
  const parsed: Array<{ path: string; run: RunFacts; results: HostResult[] }> = []
  const sameList = (a: unknown[], b: unknown[]): boolean => JSON.stringify(a) === JSON.stringify(b)
  const owner = new Map<string, string>()
  // Hosts a file says its job ran: one without a result there was left out of it (the file's size limit).
  const ran = new Set<string>()
  const shards = new Set<number>()
  let inventory = new Set<string>()
  // A file at a time, each checked as it is parsed: a lazy `files` holds one file's text at a time.
  for (const f of files) {
    const p = { path: f.path, ...parseResultsFile(f.path, f.text) }
    const first = parsed[0] ?? p
    if (p === first) inventory = new Set(p.run.inventory)
    if (!sameList(p.run.plan, first.run.plan))
      throw new MergeError(
        `${p.path}: its plan (${p.run.plan.map((s) => s.name).join(', ')}) differs from ${first.path}'s: results of different rollouts cannot be merged`
      )
    if (!sameList(p.run.inventory, first.run.inventory))
      throw new MergeError(`${p.path}: its hosts input differs from ${first.path}'s: results of different fleets cannot be merged`)
    if ((p.run.shard?.count ?? null) !== (first.run.shard?.count ?? null))
      throw new MergeError(
        `${p.path}: shard ${p.run.shard ? `${p.run.shard.index}/${p.run.shard.count}` : 'none'} does not go with ${first.path}'s`
      )
    if (p.run.shard) {
      if (shards.has(p.run.shard.index)) throw new MergeError(`${p.path}: shard ${p.run.shard.index}/${p.run.shard.count} is there twice`)
      shards.add(p.run.shard.index)
    }
    for (const r of p.results) {
      const other = owner.get(r.host)
      if (other !== undefined) throw new MergeError(`${p.path}: host ${r.host} is in ${other} too: shards must be disjoint`)
      if (!inventory.has(r.host)) throw new MergeError(`${p.path}: host ${r.host} is not in its own inventory`)
      owner.set(r.host, p.path)
    }
    for (const h of p.run.hosts) ran.add(h)
    // Kept as one list: 256 shards' copies of a 100k-host inventory are not held.
    parsed.push({ ...p, run: { ...p.run, inventory: first.run.inventory } })
  }
  if (parsed.length === 0) throw new MergeError('no results files to merge')
  const [first] = parsed
  const byHost = new Map(parsed.flatMap((p) => p.results.map((r) => [r.host, r] as const)))
  const count = first.run.shard?.count
  const missingShards = count
    ? Array.from({ length: count }, (_, i) => i + 1)
        .filter((k) => !shards.has(k))
        .map((k) => `${k}/${count}`)
    : []
  const results = first.run.inventory.map((host, i): HostResult => {
    const found = byHost.get(host)
    if (found) return found
    const shard = count ? shardOf(i, count) : undefined
    const why =
      shard && !shards.has(shard)
        ? `no results: shard ${shard}/${count} wrote no results file (its job was cancelled, or failed before it ran)`
        : ran.has(host)
          ? "no results: left out of its job's results file (the file's size limit); that job's results output counts it"
          : 'no results for this host in any file'
    return skippedResult(host, why, 'no-results')
  })
  const times = (key: 'startedAt' | 'endedAt'): number[] => parsed.map((p) => Date.parse(p.run[key])).filter(Number.isFinite)
  return {
    results,
    plan: first.run.plan,
    missingShards,
    runs: parsed.map(({ run }) => ({
      shard: run.shard && `${run.shard.index}/${run.shard.count}`,
      ...(run.runUrl ? { runUrl: run.runUrl } : {})
    })),
    files: parsed.length,
    startedAt: Math.min(...times('startedAt')),
    endedAt: Math.max(...times('endedAt'))
  }
}
