import type { ClientChannel } from 'ssh2'
import { ChannelOpenError, type Connection } from './connection'
import { streamOutput, type OutputSink } from './output'
import { backoffDelay, withRetries, type Sleep } from './retry'
import type { RunStep } from './settings'

export interface StepResult {
  name: string
  /** `skipped`: a run-once step that ran on another host. */
  status: 'success' | 'failed' | 'skipped'
  exitCode: number | null
  signal: string | null
  durationMs: number
  attempts: number
  error?: string
  /** True when the connection was lost under the step. */
  lost: boolean
  stdoutTail: string
  stderrTail: string
  /** For a reboot step: went down → accepting logins, and the whole reboot. */
  reboot?: { downtimeMs: number; totalMs: number }
  /** For an upload step: what was moved. */
  transfer?: { files: number; bytes: number; bytesPerSecond: number }
}

/** After TERM, how long the remote process gets before KILL, and KILL before we give up on it. */
export const KILL_GRACE_MS = 5000
/** A refused channel (sshd MaxSessions) is retried this often, with backoff from 250 ms. */
const CHANNEL_RETRIES = 6

/** Quotes a string for a POSIX shell. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`
}

/**
 * The remote command. The script travels on stdin, not in the command line: no size limit, no
 * quoting on the way, and it does not show in `ps`. The interpreter reads it from fd 3 while its
 * own stdin is /dev/null, so the script's stdin is empty and its exit code or signal is the
 * session's. When stdin is a pipe (OpenSSH on Linux and the BSDs) fd 3 is that pipe: no extra
 * process. Otherwise (a socketpair, which /dev/fd cannot reopen on Linux) a POSIX sh stages the
 * script in a private temp file, opens it and removes it first.
 */
export function remoteCommand(shell: string): string {
  const bootstrap =
    `if [ -p /dev/stdin ]; then exec ${shell} /dev/fd/3 3<&0 </dev/null; fi; ` +
    'umask 077 && f=$(mktemp "${TMPDIR:-/tmp}/ssh-fleet.XXXXXX") && cat >"$f" && exec 3<"$f" && rm -f "$f" || ' +
    '{ echo "ssh-fleet: could not stage the script in a temporary file" >&2; exit 125; }; ' +
    `exec ${shell} /dev/fd/3 </dev/null`
  return `sh -c ${shellQuote(bootstrap)}`
}

/** The bytes sent on stdin: one line of exports when env is set, then the script untouched. */
export function scriptPayload(step: RunStep): string {
  const names = Object.keys(step.env)
  if (names.length === 0) return step.script
  return `export ${names.map((n) => `${n}=${shellQuote(step.env[n])}`).join(' ')}\n${step.script}`
}

export interface StepContext extends OutputSink {
  connection: Connection
  shell: string
  sleep?: Sleep
}

async function openChannel(ctx: StepContext, command: string): Promise<ClientChannel | ChannelOpenError> {
  const { outcome } = await withRetries(
    () => ctx.connection.exec(command).catch((err: ChannelOpenError) => err),
    {
      retries: CHANNEL_RETRIES,
      retryable: (o) => o instanceof ChannelOpenError && o.refused,
      delayMs: (retry) => backoffDelay(retry, 250, 4000),
      sleep: ctx.sleep
    }
  )
  return outcome
}

type ChannelInternals = {
  outgoing: { id: number; state: string }
  _client: { _protocol: { signal(id: number, name: string): void } }
}

/**
 * ssh2 1.17's channel.signal() is a silent no-op once stdin has been ended (it wants outgoing state
 * 'open'), yet SSH allows a signal after EOF (RFC 4254 6.9) and sshd delivers it to the session's
 * process group. We always end stdin at once, so send the request through the protocol ourselves.
 * The step timeout integration test fails if this stops reaching the remote process.
 */
function sendSignal(channel: ClientChannel, name: string): void {
  const ch = channel as unknown as ChannelInternals
  if (ch.outgoing.state === 'open' || ch.outgoing.state === 'eof') ch._client._protocol.signal(ch.outgoing.id, name)
}

/** A StepResult for `name`, timed from `startedAt`, with the fields that differ from an empty one. */
export function stepResult(name: string, startedAt: number, fields: Partial<StepResult> & Pick<StepResult, 'status'>): StepResult {
  return { name, exitCode: null, signal: null, durationMs: Date.now() - startedAt, attempts: 1, lost: false, stdoutTail: '', stderrTail: '', ...fields }
}

/** A process that ended by itself: exit 0 is success; a signal or any other code fails, named as such. */
export function exitResult(name: string, startedAt: number, exitCode: number | null, signal: string | null, tails: Pick<StepResult, 'stdoutTail' | 'stderrTail'>): StepResult {
  if (signal) return stepResult(name, startedAt, { status: 'failed', exitCode, signal, error: `killed by signal ${signal}`, ...tails })
  if (exitCode === 0) return stepResult(name, startedAt, { status: 'success', exitCode, ...tails })
  return stepResult(name, startedAt, { status: 'failed', exitCode, error: `exit code ${exitCode}`, ...tails })
}

/** Runs a script step once. Never rejects: every outcome is a StepResult. */
export async function runScript(step: RunStep, ctx: StepContext): Promise<StepResult> {
  const started = Date.now()
  const result = (fields: Partial<StepResult> & Pick<StepResult, 'status'>): StepResult => stepResult(step.name, started, fields)
  const channel = await openChannel(ctx, remoteCommand(ctx.shell))
  if (channel instanceof ChannelOpenError) {
    return result({ status: 'failed', error: channel.message, lost: !channel.refused })
  }
  return new Promise((resolve) => {
    const { stdout, stderr } = streamOutput({ stdout: channel, stderr: channel.stderr }, ctx)
    let exit: { code: number | null; signal: string | null } | undefined
    let timedOut = false
    let unkillable = false
    let done = false
    const timers: NodeJS.Timeout[] = []
    const signal = (name: string): void => {
      try {
        sendSignal(channel, name)
      } catch {
        // The channel is already gone; its close ends the step.
      }
    }
    const finish = (): void => {
      if (done) return
      done = true
      timers.forEach(clearTimeout)
      stdout.end()
      stderr.end()
      const tails = { stdoutTail: stdout.tailText(), stderrTail: stderr.tailText() }
      const exitCode = exit?.code ?? null
      const signal = exit?.signal ?? null
      if (timedOut) {
        const limit = `${step.timeoutMs / 1000}s`
        const error = unkillable
          ? `timed out after ${limit}; the process did not end after TERM and KILL (the server may not support signals)`
          : `timed out after ${limit}; the remote process was stopped`
        return resolve(result({ status: 'failed', exitCode, signal, error, ...tails }))
      }
      if (exit === undefined) {
        const lost = ctx.connection.lostReason
        const error = lost ? `connection lost during the step: ${lost}` : 'the step ended without an exit status'
        return resolve(result({ status: 'failed', error, lost: lost !== undefined, ...tails }))
      }
      resolve(exitResult(step.name, started, exitCode, signal, tails))
    }
    channel.on('exit', (code: number | null, signal?: string) => {
      exit = { code: code ?? null, signal: signal ?? null }
    })
    // Write errors (EPIPE when the session dies) end as 'close'; they must not be unhandled.
    channel.on('error', () => {})
    channel.on('close', finish)
    // ssh2 closes open channels when the connection dies; should it ever not, the step still ends.
    void ctx.connection.whenLost().then(() => setImmediate(finish))
    if (step.timeoutMs > 0) {
      timers.push(
        setTimeout(() => {
          timedOut = true
          signal('TERM')
          timers.push(
            setTimeout(() => {
              signal('KILL')
              timers.push(
                setTimeout(() => {
                  unkillable = true
                  channel.close()
                  finish()
                }, KILL_GRACE_MS)
              )
            }, KILL_GRACE_MS)
          )
        }, step.timeoutMs)
      )
    }
    channel.end(scriptPayload(step))
  })
}
