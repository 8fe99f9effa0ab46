import { connect, type ConnectDeps } from '../ssh/connect'
import { refusedByHost, type ConnectFailure } from '../ssh/connect-errors'
import { SessionLimits, type Connection } from '../ssh/connection'
import { Replay, seconds, type FleetLog, type OutputSink } from '../report/output'
import pLimit, { type LimitFunction } from 'p-limit'
import { cancellableSleep, withRetries } from '../ssh/retry'
import { keyExchangeNote } from '../ssh/algorithms'
import { CANCELLED_BEFORE_START, hostFailed, stepResult, type HostResult, type SkipCode, type StepResult } from '../base/results'
import { clipText } from '../base/bounded'
import type { Host, RunStep, Settings, Step } from '../plan/settings'
import { dispatchStep } from '../steps/registry'
import type { StepContext } from '../steps/context'

export type HostRunDeps = Omit<ConnectDeps, 'onRetry'> & {
  /** Where local steps run and relative paths resolve: GITHUB_WORKSPACE on a runner. */
  workspace?: string
}

/**
 * `run-once` steps: the first host to reach one runs it; every other host waits for that run to end
 * (a migration finishes before anyone goes past it) and records the step as skipped.
 */
export class RunOnceSteps {
  /** By the step itself (shared by every host): an on-failure step may bear a plan step's name. */
  private readonly claims = new Map<Step, { host: string; done: Promise<StepResult> }>()

  claim(step: Step, host: Host, run: () => Promise<StepResult>): { mine: boolean; host: string; done: Promise<StepResult> } {
    const existing = this.claims.get(step)
    if (existing) return { mine: false, ...existing }
    const claim = { host: host.name, done: run() }
    this.claims.set(step, claim)
    return { mine: true, ...claim }
  }
}

/**
 * Channels opened ahead for the next run steps: two, because a step that is over in one round trip
 * would otherwise wait for the next channel (two round trips to open and start).
 */
const SPARE_CHANNELS = 2

/** Steps with a `concurrency` of their own: one limiter per step, shared by every host. */
export class StepLimits {
  private readonly limits = new Map<Step, LimitFunction>()

  run<T>(step: Step, work: () => Promise<T>): Promise<T> {
    if (step.concurrency === undefined) return work()
    let limit = this.limits.get(step)
    if (!limit) this.limits.set(step, (limit = pLimit(step.concurrency)))
    return limit(work)
  }
}

/** What every host of a run shares: run-once claims and step limits. */
export interface Shared {
  runOnce: RunOnceSteps
  limits: StepLimits
}

/** The most of a host's error or failed step a hook sees in FLEET_ERROR / FLEET_FAILED_STEP (an env entry, not a file). */
const HOOK_ENV_MAX_CHARS = 8 * 1024

/** One host going through the plan on one connection, re-established if it drops between steps. */
export class HostRun {
  readonly result: HostResult
  private connection?: Connection
  private startedAt?: number
  /** This host's output in the log. */
  private readonly sink: OutputSink
  /** The current step's output, kept to print again if the step fails the host. */
  private readonly replay = new Replay()
  /** The output of the step that failed the host, for the log's replay after the run. */
  failedOutput?: { step: string; lines: string[] }

  constructor(
    readonly host: Host,
    private readonly settings: Settings,
    private readonly log: FleetLog,
    private readonly shared: Shared,
    private readonly deps: HostRunDeps = {}
  ) {
    this.result = { host: host.name, status: 'success', exitCode: null, durationMs: 0, attempts: 0, steps: [], warnings: [] }
    this.sink = {
      output: (stream, lines) => {
        this.replay.push(stream, lines)
        return log.output(host, stream, lines)
      },
      whenDrained: (resume) => log.whenDrained(resume)
    }
  }

  /** Whether the host has failed (continue-on-error steps aside). */
  get failed(): boolean {
    return hostFailed(this.result)
  }

  /** What the host's server allows, learned on one connection and kept for the next. */
  private readonly limits = new SessionLimits()
  /** Said once: the server allows one session per connection. */
  private saidOneSession = false

  /** Makes `connection` the host's: it shares what the server allows, and links anew through `redial`. */
  private adopt(connection: Connection): void {
    connection.limits = this.limits
    connection.redial = (why) => this.redial(why)
    this.connection = connection
  }

  /**
   * A new link for the host's connection, when the last one ended before a channel's open went
   * through (`why`), or the server closes after each session (`why` undefined). Not a failure of
   * any step: counted in the host's connection attempts, said once for a one-session server.
   */
  private async redial(why: string | undefined): Promise<Connection | ConnectFailure> {
    const { host, log } = this
    if (why !== undefined) log.status(host, `reconnecting: ${why} (nothing of the next channel had been sent)`)
    else if (!this.saidOneSession) {
      this.saidOneSession = true
      log.status(host, 'the server allows one session per connection and closes it after: each session gets a connection of its own')
    }
    const outcome = await connect(host, this.settings, {
      ...this.deps,
      onRetry: (failure, retry, delayMs) =>
        log.status(host, `connection attempt ${retry} failed: ${failure.message}; retrying in ${seconds(delayMs)}`)
    })
    this.result.attempts += outcome.attempts
    return outcome.connection ?? (outcome.failure as ConnectFailure)
  }

  /** Connects when there is no live connection; returns the failure otherwise. */
  private async ensureConnected(): Promise<ConnectFailure | undefined> {
    if (this.connection && this.connection.lostReason === undefined) return undefined
    const { host, log } = this
    if (this.connection) log.status(host, `reconnecting: ${this.connection.lostReason}`)
    const started = Date.now()
    const outcome = await connect(host, this.settings, {
      ...this.deps,
      onRetry: (failure, retry, delayMs) =>
        log.status(host, `connection attempt ${retry} failed: ${failure.message}; retrying in ${seconds(delayMs)}`)
    })
    this.result.attempts += outcome.attempts
    if (outcome.retried.length > 0 && outcome.connection) {
      const causes = [...new Set(outcome.retried.map((f) => f.message))].join('; ')
      this.result.warnings.push(`connected after ${outcome.attempts} attempts; earlier attempts failed: ${causes}`)
    }
    if (outcome.failure) return outcome.failure
    this.adopt(outcome.connection as Connection)
    // The host's own handshake, then each bastion on its route that settled on legacy algorithms.
    const legacy = outcome.connection?.legacy ?? []
    const notes = [
      ...(legacy.length ? [`connected with legacy algorithms (legacy-algorithms: true): ${legacy.join(', ')}`] : []),
      ...(outcome.connection?.legacyHops ?? []).map(
        ({ hop, algorithms }) => `${hop} connected with legacy algorithms (legacy-algorithms: true): ${algorithms.join(', ')}`
      )
    ]
    for (const note of notes) if (!this.result.warnings.includes(note)) this.result.warnings.push(note)
    log.status(
      host,
      `connected as ${host.user} in ${seconds(Date.now() - started)}${outcome.attempts > 1 ? ` (attempt ${outcome.attempts})` : ''}; ${outcome.connection?.hostKey}${keyExchangeNote(outcome.connection?.keyExchange ?? '')}`
    )
    return undefined
  }

  /** What a step may use on this host. */
  private stepContext(step: Step): StepContext {
    return {
      ...this.sink,
      host: this.host,
      settings: this.settings,
      cwd: this.deps.workspace ?? process.cwd(),
      connection: this.connection,
      connect: async () => (await this.ensureConnected()) ?? (this.connection as Connection),
      status: (message) => this.log.status(this.host, message),
      sleep: this.deps.sleep,
      signal: this.deps.signal,
      ahead: this.ahead(step),
      // A host behind bastions or a proxy command is polled along its route; a direct one over TCP.
      tunnel: this.host.route ? this.deps.tunnel : undefined
    }
  }

  /**
   * Runs `step` by its kind's runner, retried as it says; the connection a step leaves (a reboot's to the
   * host back up) is the host's from then on.
   */
  private async execute(step: Step): Promise<StepResult> {
    const attempt = async (): Promise<StepResult> => {
      const { result, connection } = await dispatchStep(step, this.stepContext(step))
      if (connection) this.adopt(connection)
      return result
    }
    // A reboot has no retries: its one attempt is its result.
    if (!('retries' in step)) return attempt()
    const { outcome, attempts } = await withRetries(attempt, {
      retries: step.retries,
      retryable: (r) => r.status === 'failed' && !this.deps.signal?.aborted,
      delayMs: () => step.retryDelayMs,
      sleep: cancellableSleep(this.deps.signal, this.deps.sleep),
      onRetry: (r, retry, delay) =>
        this.log.status(this.host, `step '${step.name}' failed (${r.error}); retry ${retry} of ${step.retries} in ${seconds(delay)}`)
    })
    return { ...outcome, attempts }
  }

  /**
   * Runs `step` (a plan step or a hook) under what every host shares: its step `concurrency` limit and,
   * when run-once, the claim (`ranOn` names the host that ran it when this one did not). `env` is added
   * to the step's own; the limit and claim stay the step's.
   */
  private async guarded(step: Step, env?: Record<string, string>): Promise<{ outcome: StepResult; ranOn?: string }> {
    const run = (): Promise<StepResult> =>
      this.shared.limits.run(step, () => this.execute(env ? { ...step, env: { ...step.env, ...env } } : step))
    if (!step.runOnce) return { outcome: await run() }
    const claim = this.shared.runOnce.claim(step, this.host, run)
    const outcome = await claim.done
    return claim.mine ? { outcome } : { outcome, ranOn: claim.host }
  }

  /**
   * How many channels to open ahead while `step` runs: one for each of the next two steps when they
   * are run steps with the same command (not sudo, on a pty as this one is or not). Only for the plan's own steps.
   */
  private ahead(step: Step): number {
    const steps = this.settings.steps
    const i = steps.indexOf(step)
    if (i < 0) return 0
    const same = (next: Step | undefined): boolean => next?.kind === 'run' && !next.sudo && next.pty === (step as RunStep).pty
    let n = 0
    while (n < SPARE_CHANNELS && same(steps[i + 1 + n])) n++
    return n
  }

  /** Runs one step of the plan. Returns whether the host goes on to the next; never throws. */
  async runStep(step: Step): Promise<boolean> {
    const { host, log, result } = this
    this.startedAt ??= Date.now()
    this.replay.take()
    log.hostStarted(host, step.name)
    try {
      // A local step runs on the runner: it needs no connection (say, to drain a host that is down).
      const failure = step.kind === 'local' ? undefined : await this.ensureConnected()
      if (failure) {
        const first = this.connection === undefined
        result.status = failure.kind === 'cancelled' ? 'cancelled' : refusedByHost(failure) || !first ? 'failed' : 'unreachable'
        result.error = first ? failure.message : `could not reconnect before step '${step.name}': ${failure.message}`
        if (!first) result.failedStep = step.name
        log.status(host, `could not connect: ${failure.message}`)
        return false
      }
      const { outcome, ranOn } = await this.guarded(step)
      if (ranOn !== undefined) {
        log.status(host, `step '${step.name}' is run-once: it ran on ${ranOn} (${outcome.status})`)
        result.steps.push(stepResult(step.name, Date.now(), { status: 'skipped', error: `run once, on ${ranOn}` }))
        return true
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
        this.failedOutput = { step: step.name, lines: this.replay.take() }
        log.status(host, `step '${step.name}' failed after ${seconds(outcome.durationMs)}: ${outcome.error}`)
        return false
      }
      if (outcome.attempts > 1 && step.kind === 'run')
        result.warnings.push(`step '${step.name}' succeeded on attempt ${outcome.attempts} of ${step.retries + 1}`)
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

  /**
   * After the plan: `on-failure` steps when it failed here (with FLEET_FAILED_STEP and FLEET_ERROR),
   * then `always` steps on every host that started it. Neither turns a failed host into a success; a
   * failure in them stops that phase, and is a warning on a host that had already failed, a failure
   * otherwise. Hosts that were skipped or cancelled run neither.
   */
  async afterPlan(): Promise<void> {
    const { result, settings } = this
    if (this.startedAt === undefined || result.status === 'skipped' || result.status === 'cancelled' || this.deps.signal?.aborted) return
    const env = {
      FLEET_FAILED_STEP: clipText(result.failedStep ?? '', HOOK_ENV_MAX_CHARS),
      FLEET_ERROR: clipText(result.error ?? '', HOOK_ENV_MAX_CHARS)
    }
    if (this.failed) for (const step of settings.onFailure) if (!(await this.runHook(step, 'on-failure', env))) break
    for (const step of settings.always) if (!(await this.runHook(step, 'always', env))) break
  }

  /** Runs one on-failure or always step; whether the phase goes on. Never throws. */
  private async runHook(step: Step, phase: 'on-failure' | 'always', env: Record<string, string>): Promise<boolean> {
    const { host, log, result } = this
    const label = `${phase} step '${step.name}'`
    log.hostStarted(host, `${phase}: ${step.name}`)
    try {
      const failure = step.kind === 'local' ? undefined : await this.ensureConnected()
      const ran = failure
        ? { outcome: stepResult(step.name, Date.now(), { status: 'failed', error: `could not connect: ${failure.message}` }) }
        : await this.guarded(step, env)
      if (ran.ranOn !== undefined) {
        log.status(host, `${label} is run-once: it ran on ${ran.ranOn} (${ran.outcome.status})`)
        result.steps.push({ ...stepResult(step.name, Date.now(), { status: 'skipped', error: `run once, on ${ran.ranOn}` }), phase })
        return true
      }
      const outcome: StepResult = { ...ran.outcome, phase }
      result.steps.push(outcome)
      if (outcome.status === 'success') {
        log.status(host, `${label} succeeded in ${seconds(outcome.durationMs)}`)
        return true
      }
      log.status(host, `${label} failed after ${seconds(outcome.durationMs)}: ${outcome.error}`)
      if (this.failed || step.continueOnError) {
        result.warnings.push(`${label} failed: ${outcome.error}`)
      } else {
        result.status = 'failed'
        result.failedStep = `${phase}: ${step.name}`
        result.error = outcome.error
      }
      return step.continueOnError
    } catch (err) {
      result.warnings.push(`${label}: internal error: ${(err as Error).message}`)
      return false
    } finally {
      log.hostFinished()
    }
  }

  /** Stops the host before its next step, e.g. because too many hosts failed (`code` says which way). */
  skip(reason: string, code?: SkipCode): void {
    if (this.failed) return
    this.result.status = 'skipped'
    this.result.error = reason
    if (code) this.result.skipCode = code
  }

  /**
   * The job was cancelled before `step`: a host that had not started is skipped, one that had is
   * cancelled (it ran part of the plan).
   */
  cancel(step: Step): void {
    if (this.failed) return
    if (this.startedAt === undefined) return this.skip(CANCELLED_BEFORE_START)
    this.result.status = 'cancelled'
    this.result.error = `cancelled (the job was cancelled) before step '${step.name}'`
  }

  /** Closes the connection and completes the result. */
  finish(): HostResult {
    this.connection?.close()
    // The run keeps this object for the log's replay: it must not keep the connection or output too.
    this.connection = undefined
    this.replay.take()
    this.result.durationMs = this.startedAt === undefined ? 0 : Date.now() - this.startedAt
    return this.result
  }
}
