/** A small run of the upload bench (npm run bench -- upload), so it cannot rot. Timings are printed, never asserted. */
import { expect, test } from 'vitest'
import { uploadBench } from '../../bench/upload-tree'
import { isRoot } from '../helpers/sshd'

test.runIf(isRoot)(
  'the upload bench runs end to end on a small tree: every tool lands the whole tree on every host',
  async () => {
    const report = await uploadBench({ smoke: true })
    console.log(report.text)
    expect(report.rows.map((r) => r.tool)).toEqual(['ssh-fleet', 'scp -r', 'rsync -a', 'ssh-fleet', 'rsync -a'])
    for (const row of report.rows) expect(row.ok, `${row.work} / ${row.tool}`).toBe(true)
    expect(report.ratios).toHaveLength(2)
    for (const r of report.ratios) expect(Number.isFinite(r.value), r.target).toBe(true)
    expect(report.text).not.toMatch(/targets:|MISSED/)
  },
  180_000
)
