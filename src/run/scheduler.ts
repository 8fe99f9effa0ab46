import pLimit from 'p-limit'
import { CANCELLED_BEFORE_START, skippedResult, type HostResult } from '../base/results'
import type { Host, Step } from '../plan/settings'

/** What the scheduler needs of one host's run; HostRun in production, a fake in unit tests. */
export interface HostRunner {
  readonly host: Host
  readonly failed: boolean
  /** Runs one step; false when the host stops here. Never throws. */
  runStep(step: Step): Promise<boolean>
  skip(reason: string): void
  /** The job was cancelled before `step`. */
  cancel(step: Step): void
  /** The on-failure and always steps, once the plan is over for the host. Never throws. */
  afterPlan(): Promise<void>
  finish(): HostResult
}

export interface FleetPlan {
  batches: Host[][]
  steps: Step[]
  strategy: 'host' | 'step'
  concurrency: number
  /** Failed hosts tolerated; one more and the remaining hosts are skipped. */
  maxFailures: number
}

/** Aborted when the job is cancelled: nothing more starts; hosts in flight stop what they run. */
export type Cancel = AbortSignal | undefined

/**
 * Runs the plan over the fleet: batch after batch, each with at most `concurrency` hosts in flight,
 * either each host through the whole plan (`host`) or each step across the batch (`step`). Once more
 * than `maxFailures` hosts have failed, hosts in flight stop before their next step and hosts not yet
 * started are skipped. Results come back in the order of the hosts.
 */
export async function runFleet(plan: FleetPlan, start: (host: Host) => HostRunner, cancel?: Cancel): Promise<HostResult[]> {
  const results = new Map<Host, HostResult>()
  const limit = pLimit(plan.concurrency)
  let failures = 0
  const exceeded = (): boolean => failures > plan.maxFailures
  const stopReason = (): string => `skipped: more than ${plan.maxFailures} host${plan.maxFailures === 1 ? '' : 's'} failed (max-failures)`

  /** Runs a step on a host, counting the host's failure at once so others can stop. */
  const step = async (run: HostRunner, s: Step): Promise<boolean> => {
    if (cancel?.aborted) {
      run.cancel(s)
      return false
    }
    if (exceeded()) {
      run.skip(stopReason())
      return false
    }
    const goOn = await run.runStep(s)
    if (run.failed) failures++
    return goOn
  }

  for (const batch of plan.batches) {
    if (cancel?.aborted || exceeded()) {
      const why = cancel?.aborted ? CANCELLED_BEFORE_START : stopReason()
      for (const host of batch) results.set(host, skippedResult(host.name, why))
      continue
    }
    if (plan.strategy === 'host') {
      await Promise.all(
        batch.map((host) =>
          limit(async () => {
            const run = start(host)
            for (const s of plan.steps) if (!(await step(run, s))) break
            await run.afterPlan()
            results.set(host, run.finish())
          })
        )
      )
    } else {
      let active = batch.map(start)
      for (const s of plan.steps) {
        const goOn = await Promise.all(active.map((run) => limit(() => step(run, s))))
        const done = active.filter((_, i) => !goOn[i])
        await Promise.all(
          done.map((run) =>
            limit(async () => {
              await run.afterPlan()
              results.set(run.host, run.finish())
            })
          )
        )
        active = active.filter((_, i) => goOn[i])
      }
      await Promise.all(
        active.map((run) =>
          limit(async () => {
            await run.afterPlan()
            results.set(run.host, run.finish())
          })
        )
      )
    }
  }
  return plan.batches.flat().map((host) => results.get(host) as HostResult)
}
