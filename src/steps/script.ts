import { randomBytes } from 'node:crypto'
import type { ClientChannel, PseudoTtyOptions } from 'ssh2'
import { ChannelOpenError, commandExit, type Connection } from '../ssh/connection'
import { clipText } from '../base/bounded'
import { Capture, streamOutput } from '../report/output'
import type { RunStep } from '../plan/settings'
import { stepResult, type StepResult } from '../base/results'
import { RAW_PTY, remoteCommand, scriptPayload, stopCommand } from './remote-shell'
import { CANCEL_GRACE_MS, KILL_GRACE_MS, exitResult, stopCause } from './command-end'
import { sendSignal } from './channel-signal'
import { execOutput } from './exec-output'
import { withinTimeout } from './timeout'
import { fleetVariables, liveConnection, type StepContext, type StepRunner, type StepSettings } from './context'

/** The most of an exit-signal name kept: real ones are a word (TERM, KILL, or name@domain). */
const SIGNAL_NAME_CHARS = 64

/** What a script needs to run on a given connection: the host's, or a reboot's poll connection. */
export type ScriptContext = Pick<StepContext, 'host' | 'output' | 'whenDrained' | 'signal'> &
  Pick<StepSettings, 'shell' | 'sudoPassword'> & {
    connection: Connection
    /** How many run steps with the same command follow this one: channels to open ahead for them. */
    ahead?: number
  }

/** The step's channel (a refusal retried by the connection), or why there is none. */
function openChannel(ctx: ScriptContext, command: string, pty?: PseudoTtyOptions): Promise<ClientChannel | ChannelOpenError> {
  return ctx.connection.exec(command, false, pty).catch((err: ChannelOpenError) => err)
}

/** Runs a script step once on the host's live connection. Never rejects. */
export const runScript: StepRunner<RunStep> = async (step, ctx) => {
  const live = await liveConnection(step, ctx)
  if ('result' in live) return live
  const { host, output, whenDrained, signal, ahead } = ctx
  const { shell, sudoPassword } = ctx.settings
  return {
    result: await runScriptOn(step, { connection: live.connection, host, output, whenDrained, shell, signal, sudoPassword, ahead })
  }
}

/** Runs a script step once on `ctx.connection`. Never rejects: every outcome is a StepResult. */
export async function runScriptOn(step: RunStep, ctx: ScriptContext): Promise<StepResult> {
  const started = Date.now()
  const result = (fields: Partial<StepResult> & Pick<StepResult, 'status'>): StepResult => stepResult(step.name, started, fields)
  const stepId = randomBytes(8).toString('hex')
  const sudo = step.sudo ? { password: ctx.sudoPassword } : undefined
  const command = remoteCommand(ctx.shell, sudo, step.pty)
  const pty = step.pty ? RAW_PTY : undefined
  // One opened ahead while the step before ran, when there is one (a long path saves two round trips);
  // refused (the server limits sessions), the step opens its own as it would have.
  const spare = ctx.connection.takeSpare(command, pty)
  const opening = spare
    ? spare.then((ch) => (ch instanceof ChannelOpenError && ch.refused ? openChannel(ctx, command, pty) : ch))
    : openChannel(ctx, command, pty)
  // The next steps' channels open alongside this one's (after it: a server allowing one session
  // gives it to this step): ready when this step ends, even when it is over in one round trip.
  if (ctx.ahead) ctx.connection.prefetch(command, ctx.ahead, pty)
  // The step's timeout covers opening its channel and starting its command: a server that takes the
  // login but never answers a channel request must not hold the step forever. So does a cancel.
  const channel = await withinTimeout(opening, step.timeoutMs, ctx.signal)
  if (channel === undefined) {
    // Should the channel open after all, nothing of the script was sent: closing it runs nothing.
    void opening.then((late) => late instanceof ChannelOpenError || late.close())
    if (ctx.signal?.aborted) return result({ status: 'failed', cancelled: true, error: 'cancelled before the command started' })
    return result({
      status: 'failed',
      error: `timed out after ${step.timeoutMs / 1000}s: the server did not open a session or start the command (it took the login but does not answer channel requests)`
    })
  }
  if (channel instanceof ChannelOpenError) {
    return result({ status: 'failed', error: channel.message, lost: !channel.refused })
  }
  return new Promise((resolve) => {
    const { stdout, stderr } = streamOutput({ stdout: channel, stderr: channel.stderr }, ctx)
    const capture = step.capture ? new Capture() : undefined
    if (capture) channel.on('data', (chunk: Buffer) => capture.push(chunk))
    /** How the command ended, once the server said (the name is the host's text: a signal name is a short word, RFC 4254 6.10, anything else is cut). */
    const ended = (): { code: number | null; signal: string | null } | undefined => {
      const exit = commandExit(channel)
      return exit && { code: exit.code, signal: exit.signal === undefined ? null : clipText(exit.signal, SIGNAL_NAME_CHARS) }
    }
    /** Why the step is being stopped, and then whether what it started is known to have ended. */
    let stop: { why: 'timeout' | 'cancel'; stopped?: boolean; exitedFirst?: string } | undefined
    let closed = false
    let done = false
    const timers: NodeJS.Timeout[] = []
    const finish = (): void => {
      if (done) return
      done = true
      timers.forEach(clearTimeout)
      unwatch()
      ctx.signal?.removeEventListener('abort', onCancel)
      stdout.end()
      stderr.end()
      const tails = { stdoutTail: stdout.tailText(), stderrTail: stderr.tailText(), ...(capture ? { stdout: capture.text() } : {}) }
      const exit = ended()
      const exitCode = exit?.code ?? null
      const signal = exit?.signal ?? null
      if (stop?.stopped !== undefined) {
        const what = stopCause(stop.why, step.timeoutMs)
        const error = !stop.stopped
          ? `${what}; the remote process did not end after TERM and KILL, neither by signal nor by step id (it may still run)`
          : stop.exitedFirst
            ? `${what}: the script had ended (${stop.exitedFirst}) but a process it started kept its output open; that process was stopped`
            : `${what}; the remote process was stopped`
        return resolve(result({ status: 'failed', exitCode, signal, error, cancelled: stop.why === 'cancel', ...tails }))
      }
      if (exit === undefined) {
        const lost = ctx.connection.lostReason
        const error = lost ? `connection lost during the step: ${lost}` : 'the step ended without an exit status'
        return resolve(result({ status: 'failed', error, lost: lost !== undefined, ...tails }))
      }
      resolve(exitResult(step.name, started, exitCode, signal, tails))
    }
    let whenClosed: () => void = () => {}
    const channelClosed = new Promise<void>((r) => (whenClosed = r))
    // Write errors (EPIPE when the session dies) end as 'close'; they must not be unhandled.
    channel.on('error', () => {})
    channel.on('close', () => {
      closed = true
      whenClosed()
      // While stopping, the stop sequence decides when the step is over.
      if (!stop) finish()
    })
    // ssh2 closes open channels when the connection dies; should it ever not, the step still ends.
    const unwatch = ctx.connection.onLost(() => setImmediate(finish))
    /**
     * A timeout or a cancel: TERM, then KILL, each both as the session's signal and by step id on a
     * channel of its own (one of them reaches the script on any server). The channel's close alone is
     * no proof (dropbear closes it when its direct child ends), so a last look by step id must find
     * nothing. A cancel waits less between them: the runner kills the action 7.5 s after it asks.
     */
    const stopRemote = async (why: 'timeout' | 'cancel'): Promise<void> => {
      if (stop || done) return
      const exit = ended()
      stop = { why, exitedFirst: exit ? (exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`) : undefined }
      const grace = why === 'cancel' ? CANCEL_GRACE_MS : KILL_GRACE_MS
      /** Sends `name` by step id; true when a look found none of the step's processes left. */
      const noneLeft = async (name: 'TERM' | 'KILL'): Promise<boolean> => {
        const answer = await execOutput(ctx.connection, stopCommand(stepId, name), grace)
        // No answer (a server that allows one session) or no way to look leaves the close as the only word.
        return answer === undefined || /^(found:\s*|unknown)$/m.test(answer)
      }
      for (const name of ['TERM', 'KILL'] as const) {
        try {
          sendSignal(channel, name)
        } catch {
          // The channel is already gone.
        }
        await noneLeft(name)
        await Promise.race([channelClosed, new Promise((r) => timers.push(setTimeout(r, grace)))])
        if (closed && (await noneLeft(name))) {
          stop.stopped = true
          return finish()
        }
      }
      stop.stopped = false
      channel.close()
      finish()
    }
    const onCancel = (): void => void stopRemote('cancel')
    if (ctx.signal?.aborted) onCancel()
    else ctx.signal?.addEventListener('abort', onCancel, { once: true })
    if (step.timeoutMs > 0) timers.push(setTimeout(() => void stopRemote('timeout'), Math.max(0, started + step.timeoutMs - Date.now())))
    channel.end(scriptPayload(step, stepId, fleetVariables(ctx.host, step), sudo))
  })
}
