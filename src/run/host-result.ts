import type { StepResult } from '../steps/script'

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

/** `no-results`: the merge found no results file with this host (its shard's job wrote none). */
export type SkipCode = 'no-results'

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
