/** A small run of npm run bench, so the benchmark cannot rot. Timings are printed, never asserted. */
import { expect, test } from 'vitest'
import { bench } from '../../bench/bench'
import { thousand } from '../../bench/thousand'

test('the benchmark runs end to end on a tiny fleet and every tool does the work', async () => {
  const report = await bench({ smoke: true })
  console.log(report.text)
  const tools = ['ssh-fleet', 'OpenSSH ssh × xargs -P', 'ssh2 floor', 'ssh2 floor + bootstrap']
  expect(report.rows.map((r) => r.tool)).toEqual([
    ...Array(3).fill(tools).flat(),
    'ssh-fleet',
    'ssh-fleet',
    // the long path: direct, relayed 1 step, relayed 5 steps, for each tool
    ...tools.flatMap((tool) => [tool, tool, tool])
  ])
  for (const row of report.rows) {
    expect(row.ok, `${row.work} / ${row.tool}`).toBe(true)
    expect(row.wallMs).toBeGreaterThan(0)
    expect(row.cpuMs).toBeGreaterThan(0)
  }
  expect(report.ratios).toHaveLength(8)
  expect(report.text).toMatch(/round trips on the long path \(RTT 20 ms\)/)
  for (const r of report.ratios) expect(Number.isFinite(r.value), r.target).toBe(true)
  // Targets are judged by npm run bench on its full fleet, never in a test.
  expect(report.text).not.toMatch(/targets:|MISSED/)
}, 180_000)

test('the thousand-host part runs end to end on a tiny fleet: every tool, the report timed, the projection printed', async () => {
  const report = await thousand({ smoke: true })
  console.log(report.text)
  const tools = ['ssh-fleet', 'ssh2 floor', 'ssh2 floor + bootstrap']
  expect(report.rows.map((r) => r.tool)).toEqual([...tools, ...tools, 'ssh-fleet'])
  for (const row of report.rows) expect(row.ok, `${row.work} / ${row.tool}`).toBe(true)
  expect(report.rows[6].work).toBe('report of 8 hosts × 2 steps (in-process)')
  expect(report.text).toMatch(/projected wall of 10,000 hosts/)
  expect(report.text).toMatch(/^ {2}64 +157 /m)
  expect(report.ratios).toHaveLength(3)
  expect(report.text).not.toMatch(/targets:|MISSED/)
}, 180_000)
