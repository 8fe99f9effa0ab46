/**
 * The run's annotations within GitHub's 10 of a kind, every slot counted: the action's own warnings,
 * an error per failed host, a warning per host with warnings, the tally as a notice, the failure line.
 */
import * as core from '@actions/core'
import { ANNOTATION_LIMIT } from './constants'
import { hostFailed, type Halt, type HostResult } from '../base/results'
import { haltText } from './rollout-log'
import { tally } from './tally'
import { lastWords } from './last-words'
import type { Settings } from '../plan/settings'
import { Inputs } from '../plan/input-names'

/** Lines of output quoted in a failed host's annotation. */
const ANNOTATION_OUTPUT_LINES = 5

export interface Reporter {
  error(message: string, title: string): void
  warning(message: string, title: string): void
  notice(message: string): void
}

const coreReporter: Reporter = {
  error: (message, title) => core.error(message, { title }),
  warning: (message, title) => core.warning(message, { title }),
  notice: (message) => core.notice(message)
}

/**
 * The action's own warnings, given before any host runs: host-key-check off, the ssh config's notes
 * (one annotation for all of them: GitHub shows at most 10 warnings). Returns the warning slots left
 * of the 10 for the hosts' warnings (annotate's `warningSlots`).
 */
export function warnBeforeRun(settings: Pick<Settings, 'hostKeys' | 'sshConfigWarnings'>, reporter: Reporter = coreReporter): number {
  const warnings: Array<[message: string, title: string]> = []
  if (settings.hostKeys.mode === 'off')
    warnings.push([
      'host-key-check is off: host keys are not verified, so a machine in the middle could read this deploy',
      'Host keys not checked'
    ])
  if (settings.sshConfigWarnings.length) warnings.push([settings.sshConfigWarnings.join('\n'), Inputs.SshConfig])
  for (const [message, title] of warnings) reporter.warning(message, title)
  return ANNOTATION_LIMIT - warnings.length
}

/** Error annotations for hosts: one slot of GitHub's 10 is kept for the action's own failure line. */
const HOST_ERRORS = ANNOTATION_LIMIT - 1

/**
 * Annotations: an error per failed host (up to 9: the tenth is the action's failure, see
 * failureMessage), a warning per host that needed retries or let a failure through, a notice with the
 * tally. GitHub drops annotations past 10 of a kind, so the last warning slot says how many more.
 * `warningSlots` is what is left of the 10 after warnings already given (warnBeforeRun).
 */
export function annotate(
  results: HostResult[],
  elapsedMs: number,
  reporter: Reporter = coreReporter,
  warningSlots = ANNOTATION_LIMIT
): void {
  for (const r of results.filter(hostFailed).slice(0, HOST_ERRORS)) {
    const said = lastWords(r)
    const lines = said?.text.split('\n').filter(Boolean).slice(-ANNOTATION_OUTPUT_LINES) ?? []
    const message = [r.error ?? r.status, ...(said && lines.length ? [`${said.stream}:`, ...lines] : [])].join('\n')
    reporter.error(message, `${r.host}: ${r.failedStep ?? (r.status === 'unreachable' ? 'connect' : 'login')}`)
  }
  const warned = results.filter((r) => r.warnings.length > 0)
  const shown = warned.length > warningSlots ? warningSlots - 1 : warned.length
  for (const r of warned.slice(0, shown))
    reporter.warning(r.warnings.join('\n'), `${r.host}: ${r.warnings.length === 1 ? 'warning' : `${r.warnings.length} warnings`}`)
  if (warned.length > shown) {
    reporter.warning(
      `${warned.length - shown} more hosts have warnings; the job summary lists every host`,
      `${warned.length} hosts with warnings`
    )
  }
  reporter.notice(tally(results, elapsedMs))
}

/**
 * The action's failure line (an error annotation itself): which hosts failed, and past the 9 that
 * have annotations of their own, how many more and where to find them; when max-failures stopped the
 * rollout, which batch and host did, and how many hosts it left stopped mid-plan or not started.
 */
export function failureMessage(results: HostResult[], halt?: Halt): string | undefined {
  const failures = results.filter(hostFailed)
  if (failures.length === 0) return undefined
  const head = `${failures.length} of ${results.length} hosts failed`
  const which =
    failures.length <= HOST_ERRORS
      ? `${head}: ${failures.map((r) => r.host).join(', ')}`
      : `${head}; ${failures.length - HOST_ERRORS} more than the annotations above show: the job summary lists every host`
  if (!halt) return which
  const count = (code: HostResult['skipCode']): number => results.filter((r) => r.skipCode === code).length
  return `${which}; ${haltText(halt)}: ${count('stopped')} stopped mid-plan, ${count('not-started')} not started`
}
