/**
 * The results every floor shares: a step's and a host's outcome, as data (a failed host is a value,
 * never an exception), and the few rules on them that reports and merges decide by.
 */

/** The outcome of one step on one host. */
export interface StepResult {
  name: string
  /** `skipped`: a run-once step that ran on another host. */
  status: 'success' | 'failed' | 'skipped'
  exitCode: number | null
  signal: string | null
  durationMs: number
  attempts: number
  error?: string
  /** True when the connection was lost under the step. */
  lost: boolean
  /** True when the job was cancelled while the step ran, and the step was stopped for it. */
  cancelled?: boolean
  stdoutTail: string
  stderrTail: string
  /** For a reboot step: went down → accepting logins, and the whole reboot. */
  reboot?: { downtimeMs: number; totalMs: number }
  /** With `capture: true`: the step's whole stdout, up to 1 MiB (marked when cut). */
  stdout?: string
  /** For on-failure and always steps: which of them it was. */
  phase?: 'on-failure' | 'always'
  /**
   * For an upload step: files and bytes sent, files left as they were (already the same on the host),
   * files removed by `delete`.
   */
  transfer?: { files: number; bytes: number; unchanged: number; deleted: number; bytesPerSecond: number; transport: 'sftp' | 'exec' }
}

/** A StepResult for `name`, timed from `startedAt`, with the fields that differ from an empty one. */
export function stepResult(name: string, startedAt: number, fields: Partial<StepResult> & Pick<StepResult, 'status'>): StepResult {
  return {
    name,
    exitCode: null,
    signal: null,
    durationMs: Date.now() - startedAt,
    attempts: 1,
    lost: false,
    stdoutTail: '',
    stderrTail: '',
    ...fields
  }
}

/** `cancelled`: the job was cancelled while the host ran; what it ran was stopped. */
export type HostStatus = 'success' | 'failed' | 'skipped' | 'unreachable' | 'cancelled'

/** The outcome of one host: data, never an exception. */
export interface HostResult {
  host: string
  status: HostStatus
  exitCode: number | null
  durationMs: number
  /** Connection attempts, all connects of the plan counted. */
  attempts: number
  error?: string
  /** Name of the step that failed the host. */
  failedStep?: string
  steps: StepResult[]
  /** Why the host needed retries or went on past a failure, for warning annotations. */
  warnings: string[]
  /** Why it was skipped, as a code to decide on (`error` says it in words). */
  skipCode?: SkipCode
}

/**
 * `no-results`: the merge found no results file with this host (its shard's job wrote none).
 * `not-started`: the rollout stopped (max-failures) before the host ran any step of the plan.
 * `stopped`: the rollout stopped (max-failures) while the host was part-way through the plan: it ran
 * the steps its result lists, then no more.
 */
export type SkipCode = 'no-results' | 'not-started' | 'stopped'
export const SKIP_CODES: readonly SkipCode[] = ['no-results', 'not-started', 'stopped']

/** Which host's failure stopped a rollout (one more than max-failures), and in which batch (1-based). */
export interface Halt {
  host: string
  batch: number
  batches: number
  maxFailures: number
}

/** Why a host that had not started yet when the job was cancelled did not run. */
export const CANCELLED_BEFORE_START = 'skipped: the job was cancelled before this host started'

/** The result of a host that did not run (more of) the plan, with why (and a code where one decides). */
export function skippedResult(host: string, reason: string, code?: SkipCode): HostResult {
  return {
    host,
    status: 'skipped',
    exitCode: null,
    durationMs: 0,
    attempts: 0,
    error: reason,
    steps: [],
    warnings: [],
    ...(code ? { skipCode: code } : {})
  }
}

/** Failed, unreachable or cancelled mid-plan: what fails the action. */
export function hostFailed(r: HostResult): boolean {
  return r.status === 'failed' || r.status === 'unreachable' || r.status === 'cancelled'
}
