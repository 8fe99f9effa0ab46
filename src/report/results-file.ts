import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { hostFromJson, hostJson, type HostJson } from './report'
import { shardOf } from '../plan/inventory'
import { skippedResult, type HostResult } from '../run/host-result'

/** Names the layout of a results file; a file without it is not ours (or from another version). */
export const RESULTS_FORMAT = 'ssh-fleet-results/1'

/** What a results file says about the run that wrote it. */
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
}

export interface ResultsFile {
  format: typeof RESULTS_FORMAT
  run: RunFacts
  results: HostJson[]
}

/** Writes the run's results and facts as JSON to `path`, creating its directory. */
export function writeResultsFile(path: string, facts: RunFacts, results: HostResult[]): void {
  const file: ResultsFile = { format: RESULTS_FORMAT, run: facts, results: results.map((r) => hostJson(r, true)) }
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, `${JSON.stringify(file, null, 1)}\n`)
}

/** A results file that cannot be merged; the message names the file. */
export class MergeError extends Error {}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Parses one results file, refusing anything that is not one of ours. */
export function parseResultsFile(path: string, text: string): { run: RunFacts; results: HostResult[] } {
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
  const run = doc.run
  const okRun =
    isObject(run) &&
    Array.isArray(run.hosts) &&
    Array.isArray(run.inventory) &&
    Array.isArray(run.plan) &&
    typeof run.startedAt === 'string' &&
    typeof run.endedAt === 'string' &&
    (run.shard === null || (isObject(run.shard) && Number.isInteger(run.shard.index) && Number.isInteger(run.shard.count)))
  if (!okRun || !Array.isArray(doc.results)) throw new MergeError(`${path}: malformed results file (run facts or results missing)`)
  try {
    return { run: run as unknown as RunFacts, results: doc.results.map(hostFromJson) }
  } catch (err) {
    throw new MergeError(`${path}: malformed host result: ${(err as Error).message}`)
  }
}

/** The merged fleet: every host of the inventory once, in its order, and what was missing. */
export interface Merged {
  results: HostResult[]
  inventory: string[]
  plan: RunFacts['plan']
  /** Shards of `k/n` that wrote no file, e.g. `2/3`. */
  missingShards: string[]
  files: number
  startedAt: number
  endedAt: number
}

/**
 * Merges the results files of one rollout's shards. They must share the plan and the inventory, and
 * their hosts must be disjoint; a shard with no file leaves its hosts `skipped` with why.
 */
export function mergeResults(files: Array<{ path: string; text: string }>): Merged {
  if (files.length === 0) throw new MergeError('no results files to merge')
  const parsed = files.map((f) => ({ path: f.path, ...parseResultsFile(f.path, f.text) }))
  const [first] = parsed
  const sameList = (a: unknown[], b: unknown[]): boolean => JSON.stringify(a) === JSON.stringify(b)
  const owner = new Map<string, string>()
  const shards = new Set<number>()
  for (const p of parsed) {
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
      if (!p.run.inventory.includes(r.host)) throw new MergeError(`${p.path}: host ${r.host} is not in its own inventory`)
      owner.set(r.host, p.path)
    }
  }
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
        : 'no results for this host in any file'
    return skippedResult(host, why)
  })
  const times = (key: 'startedAt' | 'endedAt'): number[] => parsed.map((p) => Date.parse(p.run[key])).filter(Number.isFinite)
  return {
    results,
    inventory: first.run.inventory,
    plan: first.run.plan,
    missingShards,
    files: parsed.length,
    startedAt: Math.min(...times('startedAt')),
    endedAt: Math.max(...times('endedAt'))
  }
}
