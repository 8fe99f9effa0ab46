import { connect, type ConnectDeps, type ConnectFailure, type Connection } from '../ssh/connection'
import { runLocal } from '../steps/local'
import { seconds, type FleetLog, type OutputSink } from '../report/output'
import { cancellableSleep, withRetries } from '../ssh/retry'
import { reboot } from '../steps/reboot'
import { hostFailed, type HostResult } from './host-result'
import type { Host, RebootStep, Settings, Step } from '../plan/settings'
import { runScript, stepResult, type StepResult } from '../steps/script'
import { upload } from '../steps/upload'

export type HostRunDeps = Omit<ConnectDeps, 'onRetry'> & {
  /** Where local steps run and relative paths resolve: GITHUB_WORKSPACE on a runner. */
  workspace?: string
}

/**
 * `run-once` steps: the first host to reach one runs it; every other host waits for that run to end
 * (a migration finishes before anyone goes past it) and records the step as skipped.
 */
export class RunOnceSteps {
  private readonly claims = new Map<string, { host: string; done: Promise<StepResult> }>()

  claim(step: Step, host: Host, run: () => Promise<StepResult>): { mine: boolean; host: string; done: Promise<StepResult> } {
    const existing = this.claims.get(step.name)
    if (existing) return { mine: false, ...existing }
    const claim = { host: host.name, done: run() }
    this.claims.set(step.name, claim)
    return { mine: true, ...claim }
  }
}

/** One host going through the plan on one connection, re-established if it drops between steps. */
export class HostRun {
  readonly result: HostResult
  private connection?: Connection
  private startedAt?: number
  /** This host's output in the log. */
  private readonly sink: OutputSink

  constructor(
    readonly host: Host,
    private readonly settings: Settings,
    private readonly log: FleetLog,
    private readonly runOnce: RunOnceSteps,
    private readonly deps: HostRunDeps = {}
  ) {
    this.result = { host: host.name, status: 'success', exitCode: null, durationMs: 0, attempts: 0, steps: [], warnings: [] }
    this.sink = { output: (stream, lines) => log.output(host, stream, lines), whenDrained: (resume) => log.whenDrained(resume) }
  }

  /** Whether the host has failed (continue-on-error steps aside). */
  get failed(): boolean {
    return hostFailed(this.result)
  }

  /** Connects when there is no live connection; returns the failure otherwise. */
  private async ensureConnected(): Promise<ConnectFailure | undefined> {
    if (this.connection && this.connection.lostReason === undefined) return undefined
    const { host, log } = this
    if (this.connection) log.status(host, `reconnecting: ${this.connection.lostReason}`)
    const started = Date.now()
    const outcome = await connect(host, this.settings, {
      ...this.deps,
      onRetry: (failure, retry, delayMs) => log.status(host, `connection attempt ${retry} failed: ${failure.message}; retrying in ${seconds(delayMs)}`)
    })
    this.result.attempts += outcome.attempts
    if (outcome.retried.length > 0 && outcome.connection) {
      const causes = [...new Set(outcome.retried.map((f) => f.message))].join('; ')
      this.result.warnings.push(`connected after ${outcome.attempts} attempts; earlier attempts failed: ${causes}`)
    }
    if (outcome.failure) return outcome.failure
    this.connection = outcome.connection
    log.status(host, `connected as ${host.user} in ${seconds(Date.now() - started)}${outcome.attempts > 1 ? ` (attempt ${outcome.attempts})` : ''}; ${outcome.connection?.hostKey}`)
    return undefined
  }

  private async reboot(step: RebootStep): Promise<StepResult> {
    const outcome = await reboot(step, {
      host: this.host,
      connection: this.connection as Connection,
      options: this.settings,
      shell: this.settings.shell,
      status: (message) => this.log.status(this.host, message),
      ...this.sink,
      sleep: this.deps.sleep,
      signal: this.deps.signal
    })
    if (outcome.connection) this.connection = outcome.connection
    return outcome.result
  }

  private async execute(step: Step): Promise<StepResult> {
    if (step.kind === 'reboot') return this.reboot(step)
    const { outcome, attempts } = await withRetries(
      async (): Promise<StepResult> => {
        if (step.kind === 'local') return runLocal(step, this.host, { ...this.sink, cwd: this.deps.workspace ?? process.cwd(), signal: this.deps.signal })
        const lost = await this.ensureConnected()
        if (lost) return stepResult(step.name, Date.now(), { status: 'failed', lost: true, cancelled: lost.kind === 'cancelled', error: `could not reconnect: ${lost.message}` })
        const connection = this.connection as Connection
        if (step.kind === 'upload') return upload(step, connection, (message) => this.log.status(this.host, message), this.deps.signal)
        return runScript(step, { ...this.sink, connection, shell: this.settings.shell, sleep: this.deps.sleep, signal: this.deps.signal })
      },
      {
        retries: step.retries,
        retryable: (r) => r.status === 'failed' && !this.deps.signal?.aborted,
        delayMs: () => step.retryDelayMs,
        sleep: cancellableSleep(this.deps.signal, this.deps.sleep),
        onRetry: (r, retry, delay) => this.log.status(this.host, `step '${step.name}' failed (${r.error}); retry ${retry} of ${step.retries} in ${seconds(delay)}`)
      }
    )
    return { ...outcome, attempts }
  }

  /** Runs one step of the plan. Returns whether the host goes on to the next; never throws. */
  async runStep(step: Step): Promise<boolean> {
    const { host, log, result } = this
    this.startedAt ??= Date.now()
    log.hostStarted(host, step.name)
    try {
      // A local step runs on the runner: it needs no connection (say, to drain a host that is down).
      const failure = step.kind === 'local' ? undefined : await this.ensureConnected()
      if (failure) {
        const first = this.connection === undefined
        result.status = failure.kind === 'cancelled' ? 'cancelled' : failure.kind === 'auth' || failure.kind === 'host-key' || !first ? 'failed' : 'unreachable'
        result.error = first ? failure.message : `could not reconnect before step '${step.name}': ${failure.message}`
        if (!first) result.failedStep = step.name
        log.status(host, `could not connect: ${failure.message}`)
        return false
      }
      let outcome: StepResult
      if (step.runOnce) {
        const claim = this.runOnce.claim(step, host, () => this.execute(step))
        outcome = await claim.done
        if (!claim.mine) {
          log.status(host, `step '${step.name}' is run-once: it ran on ${claim.host} (${outcome.status})`)
          result.steps.push(stepResult(step.name, Date.now(), { status: 'skipped', error: `run once, on ${claim.host}` }))
          return true
        }
      } else {
        outcome = await this.execute(step)
      }
      result.steps.push(outcome)
      result.exitCode = outcome.exitCode
      if (outcome.cancelled) {
        result.status = 'cancelled'
        result.failedStep = step.name
        result.error = outcome.error
        log.status(host, `step '${step.name}' ${outcome.error}`)
        return false
      }
      if (outcome.status === 'failed') {
        if (step.continueOnError) {
          result.warnings.push(`step '${step.name}' failed and was let through (continue-on-error): ${outcome.error}`)
          log.status(host, `step '${step.name}' failed after ${seconds(outcome.durationMs)} (continue-on-error): ${outcome.error}`)
          return true
        }
        result.status = 'failed'
        result.failedStep = step.name
        result.error = outcome.error
        log.status(host, `step '${step.name}' failed after ${seconds(outcome.durationMs)}: ${outcome.error}`)
        return false
      }
      if (outcome.attempts > 1 && step.kind === 'run') result.warnings.push(`step '${step.name}' succeeded on attempt ${outcome.attempts} of ${step.retries + 1}`)
      log.status(host, `step '${step.name}' succeeded in ${seconds(outcome.durationMs)}`)
      return true
    } catch (err) {
      result.status = 'failed'
      result.failedStep = step.name
      result.error = `internal error: ${(err as Error).message}`
      return false
    } finally {
      log.hostFinished()
    }
  }

  /** Stops the host before its next step, e.g. because too many hosts failed. */
  skip(reason: string): void {
    if (this.failed) return
    this.result.status = 'skipped'
    this.result.error = reason
  }

  /**
   * The job was cancelled before `step`: a host that had not started is skipped, one that had is
   * cancelled (it ran part of the plan).
   */
  cancel(step: Step): void {
    if (this.failed) return
    if (this.startedAt === undefined) return this.skip('skipped: the job was cancelled before this host started')
    this.result.status = 'cancelled'
    this.result.error = `cancelled (the job was cancelled) before step '${step.name}'`
  }

  /** Closes the connection and completes the result. */
  finish(): HostResult {
    this.connection?.close()
    this.result.durationMs = this.startedAt === undefined ? 0 : Date.now() - this.startedAt
    return this.result
  }
}
