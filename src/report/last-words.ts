/** What a failed host's failing step said last: its annotation quotes it, so does the summary. */
import type { HostResult } from '../base/results'

/**
 * What the failed step said last: its stderr, or its stdout when stderr is empty (a server's own
 * refusal, such as ForceCommand internal-sftp's "This service allows sftp connections only.").
 */
export function lastWords(r: HostResult): { stream: 'stderr' | 'stdout'; text: string } | undefined {
  // The step that failed the host, not the last one run: on-failure and always steps come after it.
  const step = [...r.steps].reverse().find((s) => (s.phase ? `${s.phase}: ${s.name}` : s.name) === r.failedStep)
  if (!step) return undefined
  if (step.stderrTail.trim()) return { stream: 'stderr', text: step.stderrTail }
  if (step.stdoutTail.trim()) return { stream: 'stdout', text: step.stdoutTail }
  return undefined
}
