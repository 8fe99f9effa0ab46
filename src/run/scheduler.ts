import pLimit from 'p-limit'
import { CANCELLED_BEFORE_START, skippedResult, type Halt, type HostResult, type SkipCode } from '../base/results'
import type { Host, Step } from '../plan/settings'
import { haltText, type RolloutWatch } from '../report/rollout-log'

/** What the scheduler needs of one host's run; HostRun in production, a fake in unit tests. */
export interface HostRunner {
  readonly host: Host
  readonly failed: boolean
  /** Runs one step; false when the host stops here. Never throws. */
  runStep(step: Step): Promise<boolean>
  skip(reason: string, code?: SkipCode): void
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
 * started are skipped: `stopped` after the steps they ran, or `not-started`. Results come back in the
 * order of the hosts; `watch` hears of batches, hosts and steps as they go (the log, the timeline).
 */
export async function runFleet(
  plan: FleetPlan,
  start: (host: Host) => HostRunner,
  cancel?: Cancel,
  watch: RolloutWatch[] = []
): Promise<HostResult[]> {
  const results = new Map<Host, HostResult>()
  const limit = pLimit(plan.concurrency)
  const batches = plan.batches.length
  let batch = 0
  let failures = 0
  let halt: Halt | undefined
  const tell = <K extends keyof RolloutWatch>(event: K, ...args: Parameters<NonNullable<RolloutWatch[K]>>): void => {
    for (const w of watch) (w[event] as ((...a: typeof args) => void) | undefined)?.call(w, ...args)
  }
  /** Why a host is skipped once the rollout stopped, after `done` of its plan's steps. */
  const haltedSkip = (done: number): { reason: string; code: SkipCode } =>
    done === 0
      ? { reason: `not started: ${haltText(halt as Halt)}`, code: 'not-started' }
      : { reason: `stopped after step ${done} of ${plan.steps.length}: ${haltText(halt as Halt)}`, code: 'stopped' }

  /** Runs a step on a host, counting the host's failure at once so others can stop. */
  const step = async (run: HostRunner, s: Step): Promise<boolean> => {
    if (cancel?.aborted) {
      run.cancel(s)
      return false
    }
    if (halt) {
      const { reason, code } = haltedSkip(plan.steps.indexOf(s))
      run.skip(reason, code)
      return false
    }
    const startedAt = Date.now()
    const goOn = await run.runStep(s)
    tell('stepRan', run.host, plan.steps.indexOf(s), startedAt, Date.now())
    if (run.failed && ++failures > plan.maxFailures && !halt) {
      halt = { host: run.host.name, batch, batches, maxFailures: plan.maxFailures }
      tell('halted', halt)
    }
    return goOn
  }
  const begin = (host: Host): HostRunner => {
    tell('hostStarted', host)
    return start(host)
  }
  const end = async (run: HostRunner): Promise<void> => {
    await run.afterPlan()
    const result = run.finish()
    results.set(run.host, result)
    tell('hostFinished', result)
  }

  for (const hosts of plan.batches) {
    batch++
    if (cancel?.aborted || halt) {
      for (const host of hosts)
        results.set(
          host,
          cancel?.aborted ? skippedResult(host.name, CANCELLED_BEFORE_START) : skippedResult(host.name, haltedSkip(0).reason, 'not-started')
        )
      continue
    }
    tell('batchStarted', batch, batches, hosts)
    if (plan.strategy === 'host') {
      await Promise.all(
        hosts.map((host) =>
          limit(async () => {
            const run = begin(host)
            for (const s of plan.steps) if (!(await step(run, s))) break
            await end(run)
          })
        )
      )
    } else {
      let active = hosts.map(begin)
      for (const s of plan.steps) {
        const goOn = await Promise.all(active.map((run) => limit(() => step(run, s))))
        await Promise.all(active.filter((_, i) => !goOn[i]).map((run) => limit(() => end(run))))
        active = active.filter((_, i) => goOn[i])
      }
      await Promise.all(active.map((run) => limit(() => end(run))))
    }
    tell(
      'batchFinished',
      batch,
      batches,
      hosts.map((host) => results.get(host) as HostResult)
    )
  }
  return plan.batches.flat().map((host) => results.get(host) as HostResult)
}
