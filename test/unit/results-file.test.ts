import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import type { HostResult } from '../../src/base/results'
import { hostFromJson, hostJson } from '../../src/report/results-json'
import { Workspace } from '../../src/base/workspace'
import { registerSecret } from '../../src/base/secrets'
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
function shardFile(
  k: number,
  n: number,
  statuses: Record<string, HostResult['status']> = {},
  more: Partial<RunFacts> = {}
): { path: string; text: string } {
  const hosts = inventory.filter((_, i) => i % n === k - 1)
  const facts: RunFacts = {
    shard: { index: k, count: n },
    hosts,
    inventory,
    plan,
    startedAt: `2026-11-24T10:00:0${k}.000Z`,
    endedAt: `2026-11-24T10:01:0${k}.000Z`,
    actionVersion: '0.1.0',
    ...more
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

  test('a forged file: host names follow the hosts input rules (no __proto__, shell words or Markdown), refused naming the file', () => {
    for (const name of ['__proto__', 'x; rm -rf /', '[click](https://evil.example)', 'a\n::error::forged']) {
      for (const where of ['inventory', 'result'] as const) {
        const forged = JSON.parse(shardFile(1, 1).text)
        if (where === 'inventory') forged.run.inventory.push(name)
        else forged.results[0].host = name
        expect(() => mergeResults([{ path: 'forged.json', text: JSON.stringify(forged) }]), `${where}: ${name}`).toThrow(
          new RegExp(`^forged\\.json: malformed .*is not a host entry`)
        )
      }
    }
    expect(Object.prototype).not.toHaveProperty('deploy')
  })

  test('a forged file: a null or odd plan or run, odd steps, oversized strings and counts are MergeErrors, never crashes', () => {
    const forge = (change: (doc: any) => void): (() => unknown) => {
      const doc = JSON.parse(shardFile(1, 1).text)
      change(doc)
      return () => mergeResults([{ path: 'forged.json', text: JSON.stringify(doc) }])
    }
    const cases: Array<[(doc: any) => void, RegExp]> = [
      [(d) => (d.run.plan = null), /run\.plan is not a list/],
      [(d) => (d.run = null), /"run" is not an object/],
      [(d) => (d.run.plan = [null]), /run\.plan\[0\] is not an object/],
      [(d) => (d.run.plan[0].kind = 'exec'), /run\.plan\[0\]\.kind 'exec' is not one of/],
      [(d) => (d.run.shard = { index: 0, count: 1 }), /run\.shard is not null/],
      [(d) => (d.run.startedAt = 'soon'), /run\.startedAt is not a time/],
      [(d) => (d.results = {}), /results is not a list/],
      [(d) => (d.results[0].steps = [null]), /a: steps\[0\] is not an object/],
      [(d) => (d.results[0].steps[0].name = '__proto__'), /is not a step name/],
      [(d) => (d.results[0].durationMs = -1), /a: durationMs is not a number of 0 or more/],
      [(d) => (d.results[0].error = 'x'.repeat(70_000)), /a: error is 70000 characters long, more than 65536/],
      [(d) => (d.results[0].steps[0].stdoutTail = 'x'.repeat(70_000)), /stdoutTail is 70000 characters long/],
      [(d) => (d.results[0].warnings = Array(1001).fill('w')), /a: warnings has 1001 entries, more than 1000/],
      [(d) => (d.run.plan = Array(1001).fill({ name: 's', kind: 'run' })), /run\.plan has 1001 entries, more than 1000/]
    ]
    for (const [change, message] of cases) {
      const merge = forge(change)
      expect(merge, String(message)).toThrow(MergeError)
      expect(merge, String(message)).toThrow(message)
      expect(merge).toThrow(/^forged\.json: /)
    }
  })

  test("each file's run link is kept for the merged report; a file without one (an earlier version's) still merges; a link of another shape is refused", () => {
    const url = 'https://github.com/acme/site/actions/runs/77/attempts/2'
    const merged = mergeResults([shardFile(1, 2, {}, { runUrl: url }), shardFile(2, 2)])
    expect(merged.runs).toEqual([{ shard: '1/2', runUrl: url }, { shard: '2/2' }])
    expect(merged.results).toHaveLength(inventory.length)
    expect(() => mergeResults([shardFile(1, 2, {}, { runUrl: 'https://evil.example/x)](javascript:alert(1)' })])).toThrow(
      'shard-1.json: malformed results file: run.runUrl is not a link to a GitHub Actions run'
    )
  })

  test('a missing host is found by its code, not its message', () => {
    const merged = mergeResults([shardFile(1, 3), shardFile(3, 3)])
    expect(merged.results.filter((r) => r.skipCode === 'no-results').map((r) => r.host)).toEqual(['b', 'e'])
  })

  test('the file written is masked: a host that echoed a secret leaves it in no file', () => {
    registerSecret('hunter2-file-secret')
    const path = join(scratch, 'masked.json')
    const leaky = host('a')
    leaky.steps[0].stderrTail = 'sudo: hunter2-file-secret'
    leaky.error = 'failed with hunter2-file-secret'
    writeResultsFile(
      new Workspace(scratch),
      path,
      {
        shard: null,
        hosts: ['a'],
        inventory: ['a'],
        plan,
        startedAt: '2026-11-24T10:00:00.000Z',
        endedAt: '2026-11-24T10:01:00.000Z',
        actionVersion: '0.1.0'
      },
      [leaky]
    )
    const text = readFileSync(path, 'utf8')
    expect(text).not.toContain('hunter2')
    expect(text).toContain('sudo: ***')
  })
})
