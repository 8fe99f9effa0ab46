/** The one line a fleet's outcome comes down to: the notice, the summary's headline, the merge's log line. */
import type { HostResult } from '../base/results'
import { seconds } from './output'

/** The tally line: `12/12 hosts succeeded in 34.2s`, with the other outcomes when there are any. */
export function tally(results: HostResult[], elapsedMs: number): string {
  const count = (s: HostResult['status']): number => results.filter((r) => r.status === s).length
  const extras = (['failed', 'unreachable', 'cancelled', 'skipped'] as const).filter((s) => count(s) > 0).map((s) => `${count(s)} ${s}`)
  return `${count('success')}/${results.length} hosts succeeded in ${seconds(elapsedMs)}${extras.length ? ` (${extras.join(', ')})` : ''}`
}
