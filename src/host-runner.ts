import { connect, type ConnectDeps, type ConnectFailure, type Connection } from './connection'
import type { FleetLog } from './output'
import { withRetries } from './retry'
import type { Host, Settings } from './settings'
import { runScript, type StepResult } from './steps'

export type HostStatus = 'success' | 'failed' | 'skipped' | 'unreachable'

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
  /** Why the host needed retries, for warning annotations. */
  warnings: string[]
}

export type HostRunDeps = Omit<ConnectDeps, 'onRetry'>

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`
}

function describeRetries(retried: ConnectFailure[], attempts: number): string {
  const causes = [...new Set(retried.map((f) => f.message))]
  return `connected after ${attempts} attempts; earlier attempts failed: ${causes.join('; ')}`
}

/** Takes one host through the whole plan on one connection (re-established if it drops between steps). */
export async function runHost(host: Host, settings: Settings, log: FleetLog, deps: HostRunDeps = {}): Promise<HostResult> {
  const started = Date.now()
  const result: HostResult = { host: host.name, status: 'success', exitCode: null, durationMs: 0, attempts: 0, steps: [], warnings: [] }
  let connection: Connection | undefined

  /** Connects (again) when there is no live connection; returns the failure otherwise. */
  const ensureConnected = async (): Promise<ConnectFailure | undefined> => {
    if (connection && connection.lostReason === undefined) return undefined
    if (connection) log.status(host, `reconnecting: ${connection.lostReason}`)
    const attemptStart = Date.now()
    const outcome = await connect(host, settings, {
      ...deps,
      onRetry: (failure, retry, delayMs) =>
        log.status(host, `connection attempt ${retry} failed: ${failure.message}; retrying in ${formatSeconds(delayMs)}`)
    })
    result.attempts += outcome.attempts
    if (outcome.retried.length > 0) result.warnings.push(describeRetries(outcome.retried, outcome.attempts))
    if (outcome.failure) return outcome.failure
    connection = outcome.connection
    log.status(host, `connected as ${host.user} in ${formatSeconds(Date.now() - attemptStart)}${outcome.attempts > 1 ? ` (attempt ${outcome.attempts})` : ''}`)
    return undefined
  }

  log.hostStarted(host)
  try {
    const failure = await ensureConnected()
    if (failure) {
      result.status = failure.kind === 'auth' || failure.kind === 'host-key' ? 'failed' : 'unreachable'
      result.error = failure.message
      log.status(host, `could not connect: ${failure.message}`)
      return result
    }
    for (const step of settings.steps) {
      const { outcome, attempts } = await withRetries(
        async (): Promise<StepResult> => {
          const lost = await ensureConnected()
          if (lost) {
            return { name: step.name, status: 'failed', exitCode: null, signal: null, durationMs: 0, attempts: 1, lost: true, error: `could not reconnect: ${lost.message}`, stdoutTail: '', stderrTail: '' }
          }
          return runScript(step, {
            connection: connection as Connection,
            shell: settings.shell,
            output: (stream, lines) => log.output(host, stream, lines),
            sleep: deps.sleep
          })
        },
        {
          retries: step.retries,
          retryable: (r) => r.status === 'failed',
          delayMs: () => step.retryDelayMs,
          sleep: deps.sleep,
          onRetry: (r, retry, delay) => log.status(host, `step '${step.name}' failed (${r.error}); retry ${retry} of ${step.retries} in ${formatSeconds(delay)}`)
        }
      )
      const stepResult = { ...outcome, attempts }
      result.steps.push(stepResult)
      result.exitCode = stepResult.exitCode
      if (stepResult.status === 'failed') {
        result.status = 'failed'
        result.failedStep = step.name
        result.error = stepResult.error
        log.status(host, `step '${step.name}' failed after ${formatSeconds(stepResult.durationMs)}: ${stepResult.error}`)
        return result
      }
      if (attempts > 1) result.warnings.push(`step '${step.name}' succeeded on attempt ${attempts} of ${step.retries + 1}`)
      log.status(host, `step '${step.name}' succeeded in ${formatSeconds(stepResult.durationMs)}`)
    }
    return result
  } finally {
    connection?.close()
    result.durationMs = Date.now() - started
    log.hostFinished()
  }
}
