import type { Duplex } from 'node:stream'
import { Connection } from '../ssh/connection'
import type { ConnectFailure } from '../ssh/connect-errors'
import type { ConnectOptions } from '../ssh/connect'
import type { OutputSink } from '../report/output'
import type { Sleep } from '../ssh/retry'
import type { Host, Settings, Step } from '../plan/settings'
import { stepResult, type StepResult } from '../base/results'

/** The step contract: what any step may use on its host, what it gives back, and a runner's signature. */

/** What steps read of the settings: the shell, `sudo-password`, the runner's files, how to connect (a reboot's polls). */
export type StepSettings = ConnectOptions & Pick<Settings, 'shell' | 'sudoPassword' | 'workspace'>

/** What a step may use on its host, whatever its kind; its output goes to the host's sink. */
export interface StepContext extends OutputSink {
  host: Host
  settings: StepSettings
  /** Where local steps run and relative paths resolve: GITHUB_WORKSPACE on a runner. */
  cwd: string
  /** The host's connection as the step begins (it may have dropped since): a reboot starts from it. */
  connection?: Connection
  /** The host's live connection: the last one, or a new one when it dropped; the failure when it cannot connect. */
  connect(): Promise<Connection | ConnectFailure>
  /** A line about the host (not the step's own output) in the log. */
  status(message: string): void
  sleep?: Sleep
  /** Aborted when the job is cancelled: the step stops what it started, as on a timeout. */
  signal?: AbortSignal
  /** How many run steps with the same command follow this one: channels to open ahead for them. */
  ahead: number
  /** The host's route (bastions, proxy command) for a reboot's polls; undefined: plain TCP. */
  tunnel?: (host: Host) => Promise<Duplex | ConnectFailure | undefined>
}

/**
 * The variables every step sees about where it runs, remote or local: the host's address, its
 * position in `hosts` (from 0), the login user and port, and the step's name.
 */
export function fleetVariables(host: Host, step: Step): Record<string, string> {
  return {
    FLEET_HOST: host.hostname,
    FLEET_HOST_INDEX: String(host.index),
    FLEET_USER: host.user,
    FLEET_PORT: String(host.port),
    FLEET_STEP: step.name
  }
}

/** A step's result, and the connection it leaves for the steps after it when it made a new one (a reboot). */
export interface StepOutcome {
  result: StepResult
  connection?: Connection
}

/** Runs one step of its kind on a host, once. Never rejects: every outcome is a result. */
export type StepRunner<S extends Step> = (step: S, ctx: StepContext) => Promise<StepOutcome>

/** The live connection for `step`, or the step's failed result when the host cannot be reached again. */
export async function liveConnection(step: Step, ctx: StepContext): Promise<{ connection: Connection } | StepOutcome> {
  const connection = await ctx.connect()
  if (connection instanceof Connection) return { connection }
  return {
    result: stepResult(step.name, Date.now(), {
      status: 'failed',
      lost: true,
      cancelled: connection.kind === 'cancelled',
      error: `could not reconnect: ${connection.message}`
    })
  }
}
