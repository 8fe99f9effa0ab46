import { stepResult, type StepResult } from '../base/results'

/** How a step's command ended, as its result: by itself, or stopped on its timeout or the job's cancel. */

/** After TERM, how long the remote process gets before KILL, and KILL before we give up on it. */
export const KILL_GRACE_MS = 5000
/**
 * The same on a cancel: the runner sends SIGTERM 7.5 s after SIGINT and SIGKILL 2.5 s later, and
 * the report must be written before then (TERM, look, KILL, look: about 4 s at most).
 */
export const CANCEL_GRACE_MS = 1500

/** Why a step was stopped, as its error begins: its timeout, or the job's cancel. */
export function stopCause(why: 'timeout' | 'cancel', timeoutMs: number): string {
  return why === 'cancel' ? 'cancelled (the job was cancelled)' : `timed out after ${timeoutMs / 1000}s`
}

/** A process that ended by itself: exit 0 is success; a signal or any other code fails, named as such. */
export function exitResult(
  name: string,
  startedAt: number,
  exitCode: number | null,
  signal: string | null,
  tails: Pick<StepResult, 'stdoutTail' | 'stderrTail' | 'stdout'>
): StepResult {
  if (signal) return stepResult(name, startedAt, { status: 'failed', exitCode, signal, error: `killed by signal ${signal}`, ...tails })
  if (exitCode === 0) return stepResult(name, startedAt, { status: 'success', exitCode, ...tails })
  return stepResult(name, startedAt, { status: 'failed', exitCode, error: `exit code ${exitCode}`, ...tails })
}
