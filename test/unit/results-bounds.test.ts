/**
 * Bounds of what the report and the merge build from a fleet's results: the outputs within GitHub's
 * 1 MB, the results file within what the merge reads, and the merge's and summary's time linear.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import type { HostResult } from '../../src/base/results'
import { fleetMarkdown, summaryMarkdown } from '../../src/report/summary'
import { resultsJson, setOutputs } from '../../src/report/action-outputs'
import { Workspace } from '../../src/base/workspace'
import { RESULTS_FILE_BYTES, mergeResults, writeResultsFile, type RunFacts } from '../../src/report/results-file'
import { parseOutputFile } from '../helpers/action'
import { hostOf, stepOf } from '../helpers/results'

const scratch = mkdtempSync(join(tmpdir(), 'ssh-fleet-bounds-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const OUTPUT_BYTES = 1_000_000

const step = stepOf
const host = (name: string, extra: Partial<HostResult> = {}): HostResult => hostOf(name, 'success', extra)
function facts(hosts: string[], inventory = hosts, plan = ['s']): RunFacts {
  return {
    shard: null,
    hosts,
    inventory,
    plan: plan.map((name) => ({ name, kind: 'run' })),
    startedAt: '2026-12-02T10:00:00.000Z',
    endedAt: '2026-12-02T10:01:00.000Z',
    actionVersion: '0.1.0'
  }
}

describe('the results output', () => {
  test('a 30,000-character exit signal on 40 hosts: errors shortened, the output within 1 MB', () => {
    const signal = 'X'.repeat(30_000)
    const results = Array.from({ length: 40 }, (_, i) =>
      host(`h${i}`, {
        status: 'failed',
        error: `killed by signal ${signal}`,
        steps: [step('s', { status: 'failed', exitCode: null, signal, error: `killed by signal ${signal}` })]
      })
    )
    const json = resultsJson(results)
    expect(Buffer.byteLength(json)).toBeLessThanOrEqual(OUTPUT_BYTES)
    const all = JSON.parse(json)
    expect(all).toHaveLength(40)
    expect(all[39].host).toBe('h39')
    expect(all[39].error).toMatch(/^killed by signal X+ \[cut: the size limit\]$/)
  })

  test('more hosts than fit even without steps: the ones that fit, then a count of those left out', () => {
    const results = Array.from({ length: 5000 }, (_, i) => host(`h${i}`, { status: 'failed', error: 'E'.repeat(5000) }))
    const json = resultsJson(results)
    expect(Buffer.byteLength(json)).toBeLessThanOrEqual(OUTPUT_BYTES)
    const all = JSON.parse(json)
    const last = all.at(-1)
    expect(last.hostsLeftOut).toBeGreaterThan(0)
    expect(all.length - 1 + last.hostsLeftOut).toBe(5000)
    expect(all[0]).toMatchObject({ host: 'h0', stepsLeftOut: true })
  })

  test('100k hosts: succeeded and failed outputs within 1 MB, the rest counted', () => {
    const results = Array.from({ length: 100_000 }, (_, i) =>
      host(`deploy@host-${i}.example.com`, { status: i % 2 ? 'failed' : 'success' })
    )
    const file = join(scratch, 'output')
    writeFileSync(file, '')
    const before = process.env.GITHUB_OUTPUT
    process.env.GITHUB_OUTPUT = file
    try {
      setOutputs(results)
    } finally {
      if (before === undefined) delete process.env.GITHUB_OUTPUT
      else process.env.GITHUB_OUTPUT = before
    }
    const outputs = parseOutputFile(readFileSync(file, 'utf8'))
    for (const name of ['succeeded', 'failed', 'results']) expect(Buffer.byteLength(outputs[name])).toBeLessThanOrEqual(OUTPUT_BYTES)
    const lines = outputs.succeeded.split('\n')
    expect(lines[0]).toBe('deploy@host-0.example.com')
    const left = /^\((\d+) more hosts left out: the output's size limit\)$/.exec(lines.at(-1)!)
    expect(left).not.toBeNull()
    expect(lines.length - 1 + Number(left![1])).toBe(50_000)
  })
})

describe('the results file', () => {
  test('150 hosts × 6 steps printing 8 KB of \\x01: the file stays within what the merge reads, and merges', () => {
    const tail = '\x01'.repeat(8 * 1024)
    const plan = ['1', '2', '3', '4', '5', '6']
    const hosts = Array.from({ length: 150 }, (_, i) => `h${i}`)
    const results = hosts.map((h) => host(h, { steps: plan.map((s) => step(s, { stdoutTail: tail, stderrTail: tail })) }))
    const path = join(scratch, 'results.json')
    writeResultsFile(new Workspace(scratch), path, facts(hosts, hosts, plan), results)
    // Unshortened this is 150 × 12 × 48 KB escaped: 88 MB, past the 64 MiB the merge reads.
    expect(statSync(path).size).toBeLessThanOrEqual(RESULTS_FILE_BYTES)
    const merged = mergeResults([{ path: 'results.json', text: new Workspace(scratch).readText(path, RESULTS_FILE_BYTES) }])
    expect(merged.results.map((r) => r.host)).toEqual(hosts)
    expect(merged.results[149].steps[5].stderrTail.startsWith('[earlier lines left out')).toBe(true)
  })

  test("a shard's file keeps within its share of what the merge reads of all shards", () => {
    const inventory = Array.from({ length: 1600 }, (_, i) => `h${i}`)
    const hosts = inventory.slice(0, 100)
    const tail = 'y'.repeat(8 * 1024)
    const results = hosts.map((h) =>
      host(h, { steps: [step('s', { stdoutTail: tail, stderrTail: tail, stdout: 'z'.repeat(1024 * 1024) })] })
    )
    const path = join(scratch, 'shard.json')
    writeResultsFile(new Workspace(scratch), path, { ...facts(hosts, inventory), shard: { index: 1, count: 16 } }, results)
    // 100 MB of captures unshortened; the share is 512 MiB / 16.
    expect(statSync(path).size).toBeLessThanOrEqual((512 * 1024 * 1024) / 16)
  })
  test('hosts left out of a full file are counted there, and the merge says why they have no results', () => {
    const inventory = Array.from({ length: 50_000 }, (_, i) => `h${i}`)
    const hosts = inventory.slice(0, 100)
    // Even cut to 256 characters each, 100 warnings a host do not fit this shard's share (1 MB, less the inventory).
    const results = hosts.map((h) => host(h, { warnings: Array.from({ length: 100 }, () => 'w'.repeat(1000)) }))
    const path = join(scratch, 'full.json')
    writeResultsFile(new Workspace(scratch), path, facts(hosts, inventory), results)
    const text = readFileSync(path, 'utf8')
    const left = JSON.parse(text).hostsLeftOut
    expect(left).toBeGreaterThan(0)
    const merged = mergeResults([{ path: 'full.json', text }])
    expect(merged.results[99]).toMatchObject({ host: 'h99', status: 'skipped' })
    expect(merged.results[99].error).toMatch(/^no results: left out of its job's results file/)
    expect(merged.results.filter((r) => r.error?.startsWith('no results: left out'))).toHaveLength(left)
  })
})

describe('time linear in the fleet', () => {
  test('merging 100k hosts takes seconds, not the quadratic inventory scan', () => {
    const hosts = Array.from({ length: 100_000 }, (_, i) => `host-${i}.example.com`)
    const path = join(scratch, 'big.json')
    writeResultsFile(
      new Workspace(scratch),
      path,
      facts(hosts),
      hosts.map((h) => host(h, { steps: [step('s')] }))
    )
    const text = readFileSync(path, 'utf8')
    const started = performance.now()
    const merged = mergeResults([{ path: 'big.json', text }])
    // Was 18.5 s (an includes() over the inventory per host).
    expect(performance.now() - started).toBeLessThan(6000)
    expect(merged.results).toHaveLength(100_000)
  })

  const plan = Array.from({ length: 1000 }, (_, i) => `step ${i}`)
  const results = Array.from({ length: 1000 }, (_, h) =>
    host(`host-${h}`, { steps: plan.map((s, i) => step(s, i === h ? { status: 'failed', exitCode: 1 } : {})) })
  )

  test('1000 hosts × 1000 steps: the fleet table in one pass', () => {
    const started = performance.now()
    const fleet = fleetMarkdown(results, plan)
    // Was 6.4 s (plan × hosts × steps).
    expect(performance.now() - started).toBeLessThan(3000)
    expect(fleet).toContain('| step 999 | 1 |')
  })

  test('1000 hosts × 1000 steps: the summary stops building rows once its budget is spent', () => {
    const started = performance.now()
    const md = summaryMarkdown({ results, elapsedMs: 1000, steps: plan })
    // Every per-step row (a million) was built through inline() before the budget was checked.
    expect(performance.now() - started).toBeLessThan(3000)
    expect(Buffer.byteLength(md)).toBeLessThan(1_000_000)
    // Too many steps for a column each: the table counts them.
    expect(md).toContain('| host-999 | ✅ success | 999/1000 |')
  })
})
