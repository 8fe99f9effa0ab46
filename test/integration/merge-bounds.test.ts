/**
 * The merge's bound on all files together, run through dist/merge as the runner does. The files are
 * sparse (their size is all that is checked before reading): 10 of 61 MB each, every one under the
 * per-file cap, 610 MB in all.
 */
import { mkdirSync, openSync, closeSync, ftruncateSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { MERGE_ACTION, runAction } from '../helpers/action'
import { useWorkspace } from '../helpers/fixtures'
import { MERGE_BYTES, RESULTS_FILE_BYTES } from '../../src/report/results-file'

const workspace = useWorkspace('merge-bounds')

describe('merge bounds', () => {
  test('files each under the per-file cap but over MERGE_BYTES together: refused from their sizes, before any is read', async () => {
    const dir = join(workspace, 'ssh-fleet-results')
    mkdirSync(dir, { recursive: true })
    const size = 61 * 1000 * 1000
    expect(size).toBeLessThan(RESULTS_FILE_BYTES)
    for (let i = 0; i < 10; i++) {
      const fd = openSync(join(dir, `shard-${i}.json`), 'w')
      ftruncateSync(fd, size)
      closeSync(fd)
    }
    expect(10 * size).toBeGreaterThan(MERGE_BYTES)
    const run = await runAction(
      { files: 'ssh-fleet-results/*.json' },
      { bundle: MERGE_ACTION, rusage: true, env: { GITHUB_WORKSPACE: workspace } }
    )
    expect(run.code).toBe(1)
    expect(run.stdout).toContain(
      `::error::ssh-fleet merge: the 10 results files take ${10 * size} bytes, more than the ${MERGE_BYTES} bytes (MERGE_BYTES)`
    )
    // Nothing was read: reading them took 610 MB of strings and more (40 such files: 4.25 GB, out of heap).
    expect(run.usage!.maxRssKb).toBeLessThan(200 * 1024)
  })
})
