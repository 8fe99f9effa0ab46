/** Result builders for unit tests: a step or a host outcome with the fields a test sets, the rest plain. */
import type { HostResult, StepResult } from '../../src/base/results'

/** A successful step `name` (exit 0, 5 ms, one attempt), with `extra` over it. */
export function stepOf(name: string, extra: Partial<StepResult> = {}): StepResult {
  return {
    name,
    status: 'success',
    exitCode: 0,
    signal: null,
    durationMs: 5,
    attempts: 1,
    lost: false,
    stdoutTail: '',
    stderrTail: '',
    ...extra
  }
}

/** Host `name` with `status` (exit 0 on success, else 3; 1.2 s; one attempt), with `extra` over it. */
export function hostOf(name: string, status: HostResult['status'] = 'success', extra: Partial<HostResult> = {}): HostResult {
  return { host: name, status, exitCode: status === 'success' ? 0 : 3, durationMs: 1234, attempts: 1, steps: [], warnings: [], ...extra }
}
