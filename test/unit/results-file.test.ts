import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import type { HostResult } from '../../src/run/host-result'
import { hostFromJson, hostJson } from '../../src/report/report'
import { Workspace } from '../../src/base/workspace'
import { MergeError, RESULTS_FORMAT, mergeResults, writeResultsFile, type RunFacts } from '../../src/report/results-file'

const scratch = mkdtempSync(join(tmpdir(), 'ssh-fleet-results-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const inventory = ['a', 'b', 'c', 'd', 'e']
const plan = [
  { name: 'deploy', kind: 'run' },
  { name: 'reboot 2', kind: 'reboot' }
]

function host(name: string, status: HostResult['status'] = 'success', durationMs = 1000): HostResult {
  const failed = status === 'failed'
  return {
    host: name,
    status,
    exitCode: failed ? 3 : 0,
    durationMs,
    attempts: 1,
    error: failed ? 'exit code 3' : undefined,
    failedStep: failed ? 'deploy' : undefined,
    warnings: status === 'success' ? [] : ['connected after 2 attempts'],
    steps: [
      {
        name: 'deploy',
        status: failed ? 'failed' : 'success',
        exitCode: failed ? 3 : 0,
        signal: null,
        durationMs: 900,
        attempts: 1,
        lost: false,
        stdoutTail: 'out',
        stderrTail: failed ? 'boom' : '',
        ...(failed ? { error: 'exit code 3' } : { reboot: { downtimeMs: 2000, totalMs: 5000 } })
      }
    ]
  }
}

/** The file that shard k/n of `inventory` writes, with these statuses for its hosts. */
function shardFile(k: number, n: number, statuses: Record<string, HostResult['status']> = {}): { path: string; text: string } {
  const hosts = inventory.filter((_, i) => i % n === k - 1)
  const facts: RunFacts = {
    shard: { index: k, count: n },
    hosts,
    inventory,
    plan,
    startedAt: `2026-11-24T10:00:0${k}.000Z`,
    endedAt: `2026-11-24T10:01:0${k}.000Z`,
    actionVersion: '0.1.0'
  }
  const path = join(scratch, `shard-${k}-of-${n}-${Math.random().toString(16).slice(2)}.json`)
  writeResultsFile(
    new Workspace(scratch),
    path,
    facts,
    hosts.map((h) => host(h, statuses[h]))
  )
  return { path: `shard-${k}.json`, text: readFileSync(path, 'utf8') }
}

describe('results files', () => {
  test('a host result survives the round trip through the file, reboot and failure details included', () => {
    for (const r of [host('a'), host('b', 'failed')]) {
      const back = hostFromJson(JSON.parse(JSON.stringify(hostJson(r, true))))
      expect(back).toEqual(r)
    }
  })

  test('disjoint shards merge into every host once, in inventory order, over the whole time span', () => {
    const merged = mergeResults([shardFile(3, 3), shardFile(1, 3, { d: 'failed' }), shardFile(2, 3)])
    expect(merged.results.map((r) => r.host)).toEqual(inventory)
    expect(merged.results.find((r) => r.host === 'd')).toMatchObject({ status: 'failed', failedStep: 'deploy', error: 'exit code 3' })
    expect(merged.missingShards).toEqual([])
    expect(merged.files).toBe(3)
    expect(merged.endedAt - merged.startedAt).toBe(62_000)
  })

  test('a missing shard is named, and its hosts are skipped with why', () => {
    const merged = mergeResults([shardFile(1, 3), shardFile(3, 3)])
    expect(merged.missingShards).toEqual(['2/3'])
    expect(merged.results.filter((r) => r.status === 'skipped').map((r) => r.host)).toEqual(['b', 'e'])
    expect(merged.results.find((r) => r.host === 'b')?.error).toBe(
      'no results: shard 2/3 wrote no results file (its job was cancelled, or failed before it ran)'
    )
  })

  test('a host in two files, a shard twice, another plan, another fleet: refused, naming the file', () => {
    const one = shardFile(1, 2)
    const twice = { path: 'again.json', text: one.text }
    expect(() => mergeResults([one, twice])).toThrow(new MergeError('again.json: shard 1/2 is there twice'))
    const overlap = JSON.parse(shardFile(2, 2).text)
    overlap.results.push(JSON.parse(one.text).results[0])
    expect(() => mergeResults([one, { path: 'overlap.json', text: JSON.stringify(overlap) }])).toThrow(
      'overlap.json: host a is in shard-1.json too: shards must be disjoint'
    )
    const otherPlan = JSON.parse(shardFile(2, 2).text)
    otherPlan.run.plan = [{ name: 'other', kind: 'run' }]
    expect(() => mergeResults([one, { path: 'other.json', text: JSON.stringify(otherPlan) }])).toThrow(
      /^other\.json: its plan \(other\) differs from shard-1\.json's/
    )
    const otherFleet = JSON.parse(shardFile(2, 2).text)
    otherFleet.run.inventory = ['x']
    expect(() => mergeResults([one, { path: 'fleet.json', text: JSON.stringify(otherFleet) }])).toThrow(
      /^fleet\.json: its hosts input differs/
    )
  })

  test('a foreign or malformed file is an error naming it', () => {
    expect(() => mergeResults([{ path: 'package.json', text: '{"name":"x"}' }])).toThrow(
      `package.json: not an ssh-fleet results file (no "format": "${RESULTS_FORMAT}")`
    )
    expect(() => mergeResults([{ path: 'broken.json', text: '{"format": ' }])).toThrow(/^broken\.json: not JSON/)
    const bad = JSON.parse(shardFile(1, 1).text)
    bad.results[0].status = 'fine'
    expect(() => mergeResults([{ path: 'bad.json', text: JSON.stringify(bad) }])).toThrow(
      "bad.json: malformed host result: a: unknown status 'fine'"
    )
    expect(() => mergeResults([])).toThrow('no results files to merge')
  })
})
