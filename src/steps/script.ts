import { randomBytes } from 'node:crypto'
import type { ClientChannel } from 'ssh2'
import { ChannelOpenError, type Connection } from '../ssh/connection'
import { BoundedBytes, clipText } from '../base/bounded'
import { Capture, streamOutput, type OutputSink } from '../report/output'
import { backoffDelay, withRetries, type Sleep } from '../ssh/retry'
import type { RunStep } from '../plan/settings'
import { stepResult, type StepResult } from '../base/results'

/** The most of an exit-signal name kept: real ones are a word (TERM, KILL, or name@domain). */
const SIGNAL_NAME_CHARS = 64

/** After TERM, how long the remote process gets before KILL, and KILL before we give up on it. */
export const KILL_GRACE_MS = 5000
/**
 * The same on a cancel: the runner sends SIGTERM 7.5 s after SIGINT and SIGKILL 2.5 s later, and
 * the report must be written before then (TERM, look, KILL, look: about 4 s at most).
 */
export const CANCEL_GRACE_MS = 1500
/** A refused channel (sshd MaxSessions) is retried this often, with backoff from 250 ms. */
const CHANNEL_RETRIES = 6

/** Quotes a string for a POSIX shell. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`
}

/**
 * Every process of a step has this variable in its environment, with the step's own token as value:
 * it is how a timeout finds the step's processes where a signal does not reach them.
 */
const STEP_ID_VAR = 'FLEET_STEP_ID'

/**
 * The first line of stdin is the step's id: the command itself is the same for every step, so a
 * channel for the next step can be opened and its command started before the step is known.
 */
const READ_STEP_ID = `IFS= read -r ${STEP_ID_VAR} || exit 125; export ${STEP_ID_VAR}; `

/** Stages the rest of stdin (the script) in a private temp file "$f" (mktemp makes it 0600). */
const STAGE = 'f=$(mktemp "${TMPDIR:-/tmp}/ssh-fleet.XXXXXX") && cat >"$f"'
const STAGE_FAILED = 'echo "ssh-fleet: could not stage the script in a temporary file" >&2; exit 125;'

/**
 * The remote command. The script travels on stdin, not in the command line: no size limit, no
 * quoting on the way, and it does not show in `ps`. The interpreter reads it from fd 3 while its
 * own stdin is /dev/null, so the script's stdin is empty and its exit code or signal is the
 * session's. When stdin is a pipe this user may reopen (OpenSSH on Linux and the BSDs) fd 3 is that
 * pipe: no extra process. Otherwise (a socketpair, which /dev/fd cannot reopen on Linux, or
 * dropbear's root-owned 0600 pipe) a POSIX sh stages the script in a private temp file (mktemp
 * makes it 0600), opens it and removes it first.
 */
export function remoteCommand(shell: string, sudo?: Sudo): string {
  if (sudo) return `sh -c ${shellQuote(sudoBootstrap(shell, sudo))}`
  const bootstrap =
    READ_STEP_ID +
    `if [ -p /dev/stdin ] && [ -r /dev/stdin ]; then exec ${shell} /dev/fd/3 3<&0 </dev/null; fi; ` +
    `${STAGE} && exec 3<"$f" && rm -f "$f" || { ${STAGE_FAILED} }; ` +
    `exec ${shell} /dev/fd/3 </dev/null`
  return `sh -c ${shellQuote(bootstrap)}`
}

/**
 * A command that sends `signal` to every process of this user carrying the step's id, and prints
 * `found: <pids>` (`unknown` where it cannot look). Where the session's signal does not reach the script (dropbear signals only its direct
 * child; sshd refuses signals to a ForceCommand session) this stops it, children included. The id is
 * written in two pieces so this command's own processes never match it.
 */
export function stopCommand(stepId: string, signal: 'TERM' | 'KILL'): string {
  if (!/^[0-9a-f]{16}$/.test(stepId)) throw new Error(`invalid step id '${stepId}'`)
  const script =
    `v=${STEP_ID_VAR}=; v="\${v}${stepId}"; ` +
    // Never an empty or partial pattern: that would match every process of the user.
    `[ \${#v} -eq ${STEP_ID_VAR.length + 1 + stepId.length} ] || exit 2; ` +
    'if [ -r /proc/self/environ ]; then ' +
    'p=$(grep -l -F "$v" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); ' +
    // No /proc (macOS, the BSDs): ps -E appends each process's environment to its command.
    'elif o=$(ps -A -E -ww -o pid= -o command= 2>/dev/null); then ' +
    `p=$(printf '%s\\n' "$o" | awk '{ if (index($0, " ${STEP_ID_VAR}=" "${stepId}")) print $1 }'); ` +
    'else echo unknown; exit 0; fi; ' +
    `[ -z "$p" ] || kill -${signal} $p 2>/dev/null; echo found: $p`
  return `sh -c ${shellQuote(script)}`
}

/** How a step runs as root: through sudo, with the password when one is given. */
export interface Sudo {
  password?: string
}

/**
 * The remote command of a `sudo: true` step. The login user's sh reads the password (the first line
 * of stdin, when given) into a variable of its own, stages the script in a private temp file, and
 * pipes the password to `sudo -S` with printf, a builtin: it is never in a command line, an
 * environment, a file or the log. The root shell opens the file, removes it, and runs the script
 * with stdin from /dev/null, so the script never sees the password. Without a password, `sudo -n`
 * fails at once with sudo's message. sudo's exit status is the step's (a signal shows as 128+N).
 */
function sudoBootstrap(shell: string, sudo: Sudo): string {
  const run = `env ${STEP_ID_VAR}="$${STEP_ID_VAR}" sh -c ${shellQuote(`exec 3<"$1" && rm -f "$1" && exec ${shell} /dev/fd/3 </dev/null`)} sh "$f"`
  return (
    READ_STEP_ID +
    (sudo.password !== undefined ? 'IFS= read -r pw || exit 125; ' : '') +
    `${STAGE} || { rm -f "$f"; ${STAGE_FAILED} }; ` +
    (sudo.password !== undefined ? `printf '%s\n' "$pw" | sudo -S -p '' -- ${run}` : `sudo -n -- ${run} </dev/null`) +
    '; s=$?; rm -f "$f"; exit $s'
  )
}

/**
 * The bytes sent on stdin: the step's id, the sudo password's line when there is one, one line of
 * exports when env is set, then the script untouched.
 */
export function scriptPayload(step: RunStep, stepId: string, sudo?: Sudo): string {
  const names = Object.keys(step.env)
  const head = `${stepId}\n${sudo?.password !== undefined ? `${sudo.password}\n` : ''}`
  if (names.length === 0) return head + step.script
  return `${head}export ${names.map((n) => `${n}=${shellQuote(step.env[n])}`).join(' ')}\n${step.script}`
}

export interface StepContext extends OutputSink {
  connection: Connection
  shell: string
  sleep?: Sleep
  /** Aborted when the job is cancelled: the step stops what it started, as on a timeout. */
  signal?: AbortSignal
  /** For `sudo: true` steps: the `sudo-password` input. */
  sudoPassword?: string
  /** How many run steps with the same command follow this one: channels to open ahead for them. */
  ahead?: number
}

async function openChannel(ctx: StepContext, command: string): Promise<ClientChannel | ChannelOpenError> {
  const { outcome } = await withRetries(() => ctx.connection.exec(command).catch((err: ChannelOpenError) => err), {
    retries: CHANNEL_RETRIES,
    retryable: (o) => o instanceof ChannelOpenError && o.refused,
    delayMs: (retry) => backoffDelay(retry, 250, 4000),
    sleep: ctx.sleep
  })
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

/** `work`'s value, or undefined once `ms` have passed (0: no limit) or `signal` aborted, first. */
export function withinTimeout<T>(work: Promise<T>, ms: number, signal?: AbortSignal): Promise<T | undefined> {
  if (ms <= 0 && !signal) return work
  let timer: NodeJS.Timeout | undefined
  let onAbort = (): void => {}
  const expired = new Promise<undefined>((resolve) => {
    if (ms > 0) timer = setTimeout(() => resolve(undefined), ms)
    onAbort = () => resolve(undefined)
    if (signal?.aborted) onAbort()
    else signal?.addEventListener('abort', onAbort, { once: true })
  })
  return Promise.race([work, expired]).finally(() => {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  })
}

/**
 * Runs a short command on a channel of its own; its stdout, or undefined when it could not run or
 * did not answer within `ms` (a server that ignores channel requests).
 */
function execOutput(connection: Connection, command: string, ms: number): Promise<string | undefined> {
  return withinTimeout(execAnswer(connection, command), ms)
}

/**
 * The most of a short command's answer kept: `found: <pids>` for a few hundred processes. A host that
 * answers with more (600 MB seen) is cut off there: its channel is closed, the rest never held.
 */
const EXEC_ANSWER_BYTES = 4096

function execAnswer(connection: Connection, command: string): Promise<string | undefined> {
  return connection.exec(command).then(
    (ch) =>
      new Promise<string | undefined>((resolve) => {
        const out = new BoundedBytes(EXEC_ANSWER_BYTES)
        ch.on('error', () => {})
        ch.stderr.resume()
        ch.on('data', (d: Buffer) => {
          out.push(d)
          if (out.cut) ch.close()
        })
        ch.on('close', () => resolve(out.text()))
        ch.end()
      }),
    () => undefined
  )
}

/** Why a step was stopped, as its error begins: its timeout, or the job's cancel. */
export function stopCause(why: 'timeout' | 'cancel', timeoutMs: number): string {
  return why === 'cancel' ? 'cancelled (the job was cancelled)' : `timed out after ${timeoutMs / 1000}s`
}

/** A process that ended by itself: exit 0 is success; a signal or any other code fails, named as such. */
export function exitResult(
  name: string,
  startedAt: number,
  exitCode: number | null,
  signal: string | null,
  tails: Pick<StepResult, 'stdoutTail' | 'stderrTail' | 'stdout'>
): StepResult {
  if (signal) return stepResult(name, startedAt, { status: 'failed', exitCode, signal, error: `killed by signal ${signal}`, ...tails })
  if (exitCode === 0) return stepResult(name, startedAt, { status: 'success', exitCode, ...tails })
  return stepResult(name, startedAt, { status: 'failed', exitCode, error: `exit code ${exitCode}`, ...tails })
}

/** Runs a script step once. Never rejects: every outcome is a StepResult. */
export async function runScript(step: RunStep, ctx: StepContext): Promise<StepResult> {
  const started = Date.now()
  const result = (fields: Partial<StepResult> & Pick<StepResult, 'status'>): StepResult => stepResult(step.name, started, fields)
  const stepId = randomBytes(8).toString('hex')
  const sudo = step.sudo ? { password: ctx.sudoPassword } : undefined
  const command = remoteCommand(ctx.shell, sudo)
  // One opened ahead while the step before ran, when there is one (a long path saves two round trips);
  // refused (the server limits sessions), the step opens its own as it would have.
  const spare = ctx.connection.takeSpare(command)
  const opening = spare
    ? spare.then((ch) => (ch instanceof ChannelOpenError && ch.refused ? openChannel(ctx, command) : ch))
    : openChannel(ctx, command)
  // The next steps' channels open alongside this one's (after it: a server allowing one session
  // gives it to this step): ready when this step ends, even when it is over in one round trip.
  if (ctx.ahead) ctx.connection.prefetch(command, ctx.ahead)
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
    let exit: { code: number | null; signal: string | null } | undefined
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
    channel.on('exit', (code: number | null, signal?: string) => {
      // The name is the host's text: a signal name is a short word (RFC 4254 6.10), anything else is cut.
      exit = { code: code ?? null, signal: signal === undefined ? null : clipText(signal, SIGNAL_NAME_CHARS) }
    })
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
    channel.end(scriptPayload(step, stepId, sudo))
  })
}
