import { closeSync } from 'node:fs'
import * as core from '@actions/core'
import { InputError } from './plan/input-error'
import { MergeInputs } from './plan/input-names'
import { localFiles } from './plan/local-files'
import { Workspace } from './base/workspace'
import { annotate, failureMessage } from './report/annotations'
import { fleetMarkdown, shardLinks, stepTitle, summaryMarkdown, writeSummary } from './report/summary'
import { runLink } from './report/run-link'
import { tally } from './report/tally'
import { setOutputs } from './report/action-outputs'
import { MERGE_BYTES, MergeError, RESULTS_FILE_BYTES, RESULTS_FILES_MAX, mergeResults } from './report/results-file'

/** The merge action (merge/action.yml): shards' results files → one summary, annotations and outputs. */
export async function run(): Promise<void> {
  try {
    const workspace = Workspace.fromEnv(process.env)
    const pattern = core.getInput(MergeInputs.Files) || 'ssh-fleet-results/**/*.json'
    const failOn = (core.getInput(MergeInputs.FailOnFailure) || 'true').toLowerCase()
    if (failOn !== 'true' && failOn !== 'false') throw new InputError(MergeInputs.FailOnFailure, `'${failOn}' is not true or false`)
    let paths: string[]
    try {
      paths = localFiles(pattern, workspace)
    } catch (err) {
      throw new InputError(MergeInputs.Files, `${(err as Error).message}; did the download-artifact step run, into the same path?`)
    }
    if (paths.length > RESULTS_FILES_MAX)
      throw new InputError(
        MergeInputs.Files,
        `'${pattern}' names ${paths.length} files, more than the ${RESULTS_FILES_MAX} shards a matrix can have`
      )
    // All files' sizes against MERGE_BYTES before any is read; each file then read through the workspace
    // (no link leading out), bounded by what is left, and parsed before the next is read.
    const checked = <T>(read: () => T): T => {
      try {
        return read()
      } catch (err) {
        throw new MergeError((err as Error).message)
      }
    }
    const sizes = paths.map((path) =>
      checked(() => {
        const { fd, size } = workspace.open(path)
        closeSync(fd)
        return size
      })
    )
    const total = sizes.reduce((n, size) => n + size, 0)
    if (total > MERGE_BYTES)
      throw new MergeError(
        `the ${paths.length} results files take ${total} bytes, more than the ${MERGE_BYTES} bytes (MERGE_BYTES) the merge reads of all files together`
      )
    let left = MERGE_BYTES
    const files = function* (): Generator<{ path: string; text: string }> {
      for (const path of paths) {
        const text = checked(() => workspace.readText(path, Math.min(RESULTS_FILE_BYTES, left)))
        left -= Buffer.byteLength(text)
        yield { path: workspace.show(path), text }
      }
    }
    const merged = mergeResults(files())
    const elapsed = Math.max(0, merged.endedAt - merged.startedAt)
    const missing = merged.missingShards.length
      ? `shard${merged.missingShards.length > 1 ? 's' : ''} ${merged.missingShards.join(', ')} wrote no results file: ${merged.results.filter((r) => r.skipCode === 'no-results').length} hosts have no results`
      : undefined
    const scope = `${merged.files} results file${merged.files === 1 ? '' : 's'} merged${missing ? `; ${missing}` : ''}`
    core.info(`${scope}\n${tally(merged.results, elapsed)}`)
    annotate(merged.results, elapsed)
    setOutputs(merged.results)
    await writeSummary(
      summaryMarkdown({
        results: merged.results,
        elapsedMs: elapsed,
        steps: merged.plan.map((s) => s.name),
        title: stepTitle(process.env),
        runUrl: runLink(process.env),
        intro: [
          scope,
          ...shardLinks(merged.runs),
          '',
          ...fleetMarkdown(
            merged.results,
            merged.plan.map((s) => s.name)
          )
        ]
      })
    )
    const failure = [failureMessage(merged.results), missing].filter(Boolean).join('; ')
    if (!failure) return
    if (failOn === 'true') core.setFailed(failure)
    else core.info(`not failing (fail-on-failure: false): ${failure}`)
  } catch (err) {
    if (err instanceof InputError) core.setFailed(err.message)
    else if (err instanceof MergeError) core.setFailed(`ssh-fleet merge: ${err.message}`)
    else core.setFailed(`ssh-fleet merge failed: ${(err as Error).message}`)
  }
}
