import * as core from '@actions/core'
import { setMaxListeners } from 'node:events'
import { HandshakeGates } from './ssh/handshake-gate'
import { skippedResult, type HostResult } from './base/results'
import { HostRun, RunOnceSteps, StepLimits } from './run/host-runner'
import { InputError } from './plan/input-error'
import { getSettings } from './plan/inputs'
import { Router } from './ssh/routes'
import { FleetLog, seconds } from './report/output'
import { annotate, failureMessage, warnBeforeRun } from './report/annotations'
import { dryRunMarkdown, stepTitle, summaryMarkdown, writeSummary } from './report/summary'
import { RolloutLog } from './report/rollout-log'
import { Timeline } from './report/timeline'
import { runLink } from './report/run-link'
import { setOutputs } from './report/action-outputs'
import { describePlan } from './report/plan-text'
import { writeResultsFile } from './report/results-file'
import { runFleet } from './run/scheduler'
import type { Host, Settings } from './plan/settings'
import { version } from '../package.json'

/** Writes the `results-file`, when asked for. */
function saveResults(settings: Settings, startedAt: Date, results: HostResult[]): void {
  if (!settings.resultsFile) return
  const runUrl = runLink(process.env)
  writeResultsFile(
    settings.workspace,
    settings.resultsFile,
    {
      shard: settings.shard ?? null,
      hosts: settings.hosts.map((h) => h.name),
      inventory: settings.inventory,
      plan: settings.steps.map((s) => ({ name: s.name, kind: s.kind })),
      startedAt: startedAt.toISOString(),
      endedAt: new Date().toISOString(),
      actionVersion: version,
      ...(runUrl ? { runUrl } : {})
    },
    results
  )
}

/** What a cancel did: hosts stopped mid-plan, and hosts that never started (skipped with no step run). */
function cancelledMessage(results: HostResult[]): string {
  const stopped = results.filter((r) => r.status === 'cancelled').length
  const notStarted = results.filter((r) => r.status === 'skipped' && r.steps.length === 0).length
  return `the job was cancelled: ${stopped} host${stopped === 1 ? '' : 's'} stopped mid-plan, ${notStarted} not started`
}

/**
 * Writes each part of the report (results file, annotations, outputs, summary) on its own: one that
 * throws never stops the others. Returns what failed, in words, for the action's failure.
 */
async function report(parts: Array<[what: string, write: () => void | Promise<void>]>): Promise<string[]> {
  const failed: string[] = []
  for (const [what, write] of parts) {
    try {
      await write()
    } catch (err) {
      failed.push(`the ${what} could not be written: ${(err as Error).message}`)
    }
  }
  return failed
}

/** settings → fleet run → report. The only place that decides the action failed. */
export async function run(): Promise<void> {
  let router: Router | undefined
  let log: FleetLog | undefined
  let finished = false
  // The runner ignores commands inside the log's stop-commands fence: every error is printed after it closed.
  const fail = (message: string): void => {
    log?.close()
    core.setFailed(message)
  }
  // Node exits quietly, with code 0, when nothing is left to wait on. Should a host's work ever stop
  // without an outcome, that must be a failure, never a silent success.
  process.once('beforeExit', () => {
    if (!finished) fail('ssh-fleet stopped before every host had a result (internal error)')
  })
  // The runner cancels a job with SIGINT, then SIGTERM 7.5 s later, then SIGKILL: the first stops
  // what runs on the hosts and leads to the report; a second one ends the process at once.
  const cancel = new AbortController()
  // Every host in flight listens for the cancel (and stops listening when done): past 10, Node would
  // warn of a leak that is not one.
  setMaxListeners(0, cancel.signal)
  const onSignal = (name: NodeJS.Signals): void => {
    if (cancel.signal.aborted) process.exit(1)
    core.info(`${name}: the job is being cancelled; stopping what runs on the hosts, then reporting`)
    cancel.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    const settings = getSettings()
    const plan = describePlan(settings)
    const startedAt = new Date()
    log = new FleetLog(settings.concurrency === 1 || settings.hosts.length === 1)
    if (settings.dryRun) {
      log.note(`${plan}\ndry-run: nothing was connected to.`)
      log.close()
      const results = settings.hosts.map((h) => skippedResult(h.name, 'dry-run'))
      const failed = await report([
        ['results file', () => saveResults(settings, startedAt, results)],
        ['outputs', () => setOutputs(results)],
        ['job summary', () => writeSummary(dryRunMarkdown(plan))]
      ])
      if (failed.length) fail(failed.join('; '))
      return
    }
    const warningSlots = warnBeforeRun(settings)
    log.note(plan)
    const gates = new HandshakeGates({
      max: settings.concurrency,
      signal: cancel.signal,
      // Every host on the address waits: said once, for all of them.
      onPause: (address, ms, why) =>
        log?.note(`${address} turns away even a lone connection (${why}): no new connection to it for ${seconds(ms)}, then one to probe`)
    })
    router = new Router(settings, { gates, signal: cancel.signal }, (host, message) =>
      host ? log?.status(host, message) : log?.note(message)
    )
    const tunnel = router.tunnel
    const shared = { runOnce: new RunOnceSteps(), limits: new StepLimits() }
    const started = Date.now()
    const runs: HostRun[] = []
    const start = (host: Host): HostRun => {
      const run = new HostRun(host, settings, log as FleetLog, shared, {
        gates,
        tunnel,
        signal: cancel.signal,
        workspace: settings.workspace.dir
      })
      runs.push(run)
      return run
    }
    const rollout = new RolloutLog(settings.hosts.length, (line) => log?.note(line))
    const timeline = new Timeline()
    const results = await runFleet(settings, start, cancel.signal, [rollout, timeline])
    // With several hosts in flight their lines interleave: each failed host's failing step again, whole.
    if (!log.grouped) for (const r of runs) if (r.failedOutput?.lines.length) log.replay(r.host, r.failedOutput.step, r.failedOutput.lines)
    log.close()
    const elapsed = Date.now() - started
    const failed = await report([
      ['results file', () => saveResults(settings, startedAt, results)],
      ['annotations', () => annotate(results, elapsed, undefined, warningSlots)],
      ['outputs', () => setOutputs(results)],
      [
        'job summary',
        () =>
          writeSummary(
            summaryMarkdown({
              results,
              elapsedMs: elapsed,
              steps: settings.steps.map((s) => s.name),
              title: stepTitle(process.env),
              runUrl: runLink(process.env),
              halt: rollout.halt,
              timeline
            })
          )
      ]
    ])
    const failure = [cancel.signal.aborted && cancelledMessage(results), failureMessage(results, rollout.halt), ...failed]
      .filter(Boolean)
      .join('; ')
    if (failure) fail(failure)
  } catch (err) {
    if (err instanceof InputError) {
      fail(`${err.message}. Nothing was run on any host.`)
    } else {
      fail(`ssh-fleet failed: ${(err as Error).message}`)
    }
  } finally {
    finished = true
    await router?.close()
    // Cancelled: the report is written; nothing left is worth the runner's SIGKILL.
    if (cancel.signal.aborted) process.exit(1)
  }
}
