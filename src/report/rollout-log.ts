/**
 * The rollout as a reader of the live log follows it: a line as each batch starts and ends, a
 * progress count now and then, and which batch and host stopped it.
 */
import { hostFailed, type Halt, type HostResult } from '../base/results'
import type { Host } from '../plan/settings'
import { seconds } from './output'

/**
 * What the scheduler tells those who watch a rollout; every method optional. Batches count from 1;
 * `step` is the plan step's index; times are Date.now() values.
 */
export interface RolloutWatch {
  batchStarted?(batch: number, batches: number, hosts: Host[]): void
  /** The scheduler took the host up (its first step is next). */
  hostStarted?(host: Host): void
  stepRan?(host: Host, step: number, startedAt: number, endedAt: number): void
  hostFinished?(result: HostResult): void
  batchFinished?(batch: number, batches: number, results: HostResult[]): void
  /** One host more than max-failures has failed: nothing more starts. */
  halted?(halt: Halt): void
}

/** The halt in words: one wording for the log, the results, the annotations and the summary. */
export function haltText(halt: Halt): string {
  const where = halt.batches > 1 ? ` in batch ${halt.batch}/${halt.batches}` : ''
  const more = `more than ${halt.maxFailures} host${halt.maxFailures === 1 ? '' : 's'} failed (max-failures)`
  return `the rollout stopped${where} when ${halt.host} failed: ${more}`
}

/** Host names a batch line shows: up to this many by name, more as the first…the last. */
const BATCH_NAMES = 3

/** `web3…web6`, or the names themselves when there are few: a line stays short however large the batch. */
export function hostSpan(names: string[]): string {
  return names.length <= BATCH_NAMES ? names.join(', ') : `${names[0]}…${names[names.length - 1]}`
}

/** `3 succeeded, 1 failed`: each outcome present, in a fixed order. */
export function outcomes(results: HostResult[]): string {
  const words: Record<HostResult['status'], string> = {
    success: 'succeeded',
    failed: 'failed',
    unreachable: 'unreachable',
    cancelled: 'cancelled',
    skipped: 'skipped'
  }
  return (Object.keys(words) as Array<HostResult['status']>)
    .map((s) => [results.filter((r) => r.status === s).length, words[s]] as const)
    .filter(([n]) => n > 0)
    .map(([n, word]) => `${n} ${word}`)
    .join(', ')
}

/**
 * The least time between two progress lines. Seconds, not hosts: a reader of a live log feels time,
 * and a count would flood a 1,000-host run (or say nothing for minutes in a 20-host one with long
 * steps). Written only as a host finishes, so a quiet stretch adds no lines, and a run shorter than
 * this writes none.
 */
export const PROGRESS_EVERY_MS = 5_000

/** Where the lines go: FleetLog's note(), inside its command fence (host names are the workflow's text). */
export type LineSink = (line: string) => void

/** Writes the rollout's own lines to the log, and keeps the halt for the annotations and the summary. */
export class RolloutLog implements RolloutWatch {
  /** Set once the rollout stopped (max-failures). */
  halt?: Halt
  private started = 0
  private readonly done: HostResult[] = []
  private seen = 0
  private batchAt = 0
  private lastProgress: number

  constructor(
    private readonly total: number,
    private readonly write: LineSink,
    private readonly now: () => number = Date.now
  ) {
    this.lastProgress = now()
  }

  batchStarted(batch: number, batches: number, hosts: Host[]): void {
    this.seen += hosts.length
    this.batchAt = this.now()
    if (batches > 1)
      this.write(`batch ${batch}/${batches}: ${hosts.length} host${hosts.length === 1 ? '' : 's'} (${hostSpan(hosts.map((h) => h.name))})`)
  }

  hostStarted(): void {
    this.started++
  }

  hostFinished(result: HostResult): void {
    this.done.push(result)
    const at = this.now()
    if (at - this.lastProgress < PROGRESS_EVERY_MS || this.done.length === this.total) return
    this.lastProgress = at
    const failed = this.done.filter(hostFailed).length
    const skipped = this.done.filter((r) => r.status === 'skipped').length
    this.write(
      `[${this.done.length}/${this.total} hosts done, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}, ${this.started - this.done.length} running]`
    )
  }

  halted(halt: Halt): void {
    this.halt = halt
    this.write(`${haltText(halt)}; hosts in flight stop before their next step, no other host starts`)
  }

  batchFinished(batch: number, batches: number, results: HostResult[]): void {
    const halted = this.halt?.batch === batch
    if (batches > 1) this.write(`batch ${batch}/${batches} done in ${seconds(this.now() - this.batchAt)}: ${outcomes(results)}`)
    if (!halted || !this.halt) return
    const stopped = results.filter((r) => r.skipCode === 'stopped').length
    const notStarted = results.filter((r) => r.skipCode === 'not-started').length + (this.total - this.seen)
    this.write(`${haltText(this.halt)}: ${stopped} host${stopped === 1 ? '' : 's'} stopped mid-plan, ${notStarted} not started`)
  }
}
