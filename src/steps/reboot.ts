import { connect as tcpConnect, type Socket } from 'node:net'
import { connectOnce } from '../ssh/connect'
import { classifyConnectError, destination, type SshError } from '../ssh/connect-errors'
import type { Connection } from '../ssh/connection'
import { seconds, type OutputSink } from '../report/output'
import { cancellableSleep, realSleep } from '../ssh/retry'
import type { Host, RebootStep, RunStep } from '../plan/settings'
import { runScriptOn } from './script'
import type { StepRunner } from './context'
import { stepResult, type StepResult } from '../base/results'

/** Each poll's handshake, once the banner came, gets at most this long. */
const POLL_CONNECT_TIMEOUT_MS = 5000
/** The boot id and test commands must answer within this; the reboot command has the step's whole timeout. */
const PROBE_TIMEOUT_MS = 30_000
/** While the host is down (and not refusing) or still on its old boot id, it is polled about this often. */
const POLL_INTERVAL_MS = 1000

/** How often a refusing port is knocked on while a host reboots: a refused TCP connect costs it nothing. */
const KNOCK_MS = 100

/**
 * While the reboot command runs, the host is asked every 2 s whether it is there, whatever
 * `keepalive-interval` says: a host whose network goes down before its session closes (`reboot -f`,
 * an IPMI reset) never closes it, it goes silent. Five unanswered (about 12 s of silence) is the
 * host going down; a live sshd answers at once, however busy the command (a drain) keeps the host.
 */
const REBOOT_WATCH = { intervalMs: 2000, countMax: 5 }

/**
 * A TCP connection to `host` that has its first bytes waiting (the banner, unread), for the handshake
 * to take over; or, at the deadline or a cancel, why there is none. While the port refuses it is
 * knocked on every KNOCK_MS. A connection that is accepted is kept, however long the banner takes
 * (a port bound long before sshd answers): each one dropped unanswered would count against this
 * address in sshd's PerSourcePenalties (a connection without attempting authentication).
 */
function connectionWithBanner(host: Host, deadline: number, signal?: AbortSignal): Promise<{ socket: Socket } | { error: string }> {
  return new Promise((resolve) => {
    let error = 'no attempt yet'
    const knock = (): void => {
      if (Date.now() >= deadline || signal?.aborted) return resolve({ error })
      const started = Date.now()
      const socket = tcpConnect({ host: host.hostname, port: host.port })
      const stop = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onCancel)
        socket.removeAllListeners()
      }
      const again = (delayMs: number): void => {
        stop()
        socket.destroy()
        setTimeout(knock, Math.max(0, started + delayMs - Date.now()))
      }
      const onCancel = (): void => again(0)
      signal?.addEventListener('abort', onCancel, { once: true })
      // Until it connects, a knock is given a few intervals (a host whose network is down drops it
      // silently); once connected, the deadline.
      let timer = setTimeout(() => {
        error = `no answer from ${destination(host, false)} (TCP connect)`
        again(0)
      }, KNOCK_MS * 5)
      socket.once('connect', () => {
        clearTimeout(timer)
        error = `connected to ${destination(host, false)}, no SSH banner yet`
        timer = setTimeout(() => again(0), Math.max(0, deadline - Date.now()))
      })
      socket.once('data', (chunk: Buffer) => {
        stop()
        // Put back for ssh2, which reads the stream from its start.
        socket.pause()
        socket.unshift(chunk)
        resolve({ socket })
      })
      socket.once('error', (err: SshError) => {
        error = classifyConnectError(Object.assign(err, { level: 'client-socket' }), KNOCK_MS, destination(host, false)).message
        again(KNOCK_MS)
      })
      // Accepted and closed without a byte: a host still coming up; knocking fast would only repeat it.
      socket.once('end', () => {
        error = `connection to ${destination(host, false)} closed before the SSH banner`
        again(POLL_INTERVAL_MS)
      })
    }
    knock()
  })
}

/**
 * The reboot command: the step's own as written; by default root reboots itself, and anyone else goes
 * through sudo: with `sudo-password` the way a `sudo: true` step does, else `sudo -n`, which must not prompt.
 */
function rebootCommand(step: RebootStep, user: string, sudoPassword?: string): { script: string; sudo: boolean } {
  if (step.command !== undefined) return { script: step.command, sudo: false }
  if (user === 'root') return { script: 'shutdown -r now', sudo: false }
  return sudoPassword !== undefined ? { script: 'shutdown -r now', sudo: true } : { script: 'sudo -n shutdown -r now', sudo: false }
}

/** Runs one of the reboot's commands (boot id, reboot, test) on a connection, into `sink`. */
type Probe = (
  connection: Connection,
  name: string,
  script: string,
  sink?: OutputSink,
  sudo?: boolean,
  timeoutMs?: number
) => Promise<StepResult>

/** The boot id is read, not shown. */
const QUIET: OutputSink = { output: () => true, whenDrained: (resume) => resume() }

/** Runs the boot id command; the id, or why there is none. */
async function bootId(step: RebootStep, connection: Connection, probe: Probe): Promise<{ id: string } | { error: string }> {
  const r = await probe(connection, 'boot id', step.bootIdCommand, QUIET)
  const id = r.stdoutTail.trim()
  if (r.status !== 'success')
    return { error: `boot-id-command failed: ${r.error}${r.stderrTail ? ` (${r.stderrTail.split('\n').pop()})` : ''}` }
  if (id === '') return { error: 'boot-id-command printed nothing' }
  return { id }
}

/**
 * Reboots the host and waits until it is back (SPEC 3): read the boot id, run the reboot command
 * (the connection dropping or going silent under it is success; a non-zero exit with the connection
 * still up is failure, at once), close, then poll about once a second until the deadline. A host that answers
 * with the old boot id has not gone down yet; a new boot id and a passing test command is success.
 */
export const runReboot: StepRunner<RebootStep> = async (step, ctx) => {
  const sleep = cancellableSleep(ctx.signal, ctx.sleep ?? realSleep)
  const started = Date.now()
  const result = (fields: Partial<StepResult> & Pick<StepResult, 'status'>): StepResult => stepResult(step.name, started, fields)
  const probe: Probe = (connection, name, script, sink = ctx, sudo = false, timeoutMs = PROBE_TIMEOUT_MS) => {
    const run: RunStep = {
      kind: 'run',
      name,
      script,
      env: step.env,
      timeoutMs,
      retries: 0,
      retryDelayMs: 0,
      continueOnError: false,
      runOnce: false,
      capture: false,
      sudo,
      pty: false
    }
    return runScriptOn(run, {
      connection,
      host: ctx.host,
      shell: ctx.settings.shell,
      output: sink.output,
      whenDrained: sink.whenDrained,
      signal: ctx.signal,
      sudoPassword: ctx.settings.sudoPassword
    })
  }
  // The host runner connects before every step that is not local.
  const connection = ctx.connection as Connection
  if (step.preDelayMs > 0) await sleep(step.preDelayMs)
  const before = await bootId(step, connection, probe)
  if ('error' in before)
    return { result: result({ status: 'failed', error: `could not read the boot id before rebooting: ${before.error}` }) }
  const command = rebootCommand(step, ctx.host.user, ctx.settings.sudoPassword)
  ctx.status(`boot id ${before.id}; rebooting: ${command.sudo ? 'sudo (with sudo-password) ' : ''}${command.script}`)
  const deadline = Date.now() + step.timeoutMs
  // A drain before the shutdown may take minutes: the command is bounded by the step's timeout only.
  // A connection that stops answering under it is the host going down, as much as one that closes.
  connection.watch(REBOOT_WATCH)
  const sent = await probe(connection, step.name, command.script, ctx, command.sudo, Math.max(1, deadline - Date.now()))
  const commandEnded = Date.now()
  let wentDown = sent.lost ? (connection.silentSince ?? commandEnded) : undefined
  if (sent.lost) ctx.status(`going down (${sent.error})`)
  connection.close()
  if (sent.status === 'failed' && !sent.lost) {
    return {
      result: result({
        status: 'failed',
        exitCode: sent.exitCode,
        signal: sent.signal,
        stdoutTail: sent.stdoutTail,
        stderrTail: sent.stderrTail,
        error: `the reboot command failed with the connection still up (${sent.error}): nothing was rebooted`
      })
    }
  }
  let last = 'no attempt yet'
  /** Whether the last attempt found the old boot id: said once per stretch of them. */
  let lastOldBoot = false
  while (Date.now() < deadline && !ctx.signal?.aborted) {
    let tick = Date.now()
    const wasOldBoot = lastOldBoot
    lastOldBoot = false
    // Over TCP, knock while the port refuses and keep the connection that is accepted until its banner:
    // the handshake starts on it the moment the server speaks.
    let tcp: Socket | undefined
    if (!ctx.tunnel) {
      const waited = await connectionWithBanner(ctx.host, deadline, ctx.signal)
      if ('error' in waited) {
        if (wentDown === undefined) ctx.status(`down (${waited.error})`)
        wentDown ??= tick
        last = waited.error
        continue
      }
      tcp = waited.socket
      tick = Date.now()
    }
    // The host's own connect timeout applies (connectOnce), cut to the poll's and the deadline's.
    const maxTimeoutMs = Math.max(1, Math.min(POLL_CONNECT_TIMEOUT_MS, deadline - tick))
    const sock = ctx.tunnel ? await ctx.tunnel(ctx.host) : undefined
    const outcome =
      sock && 'kind' in sock
        ? { failure: sock }
        : await connectOnce(ctx.host, ctx.settings, { sock, tcp, signal: ctx.signal, maxTimeoutMs })
    if ('failure' in outcome) {
      if (outcome.failure.kind === 'host-key')
        return { result: result({ status: 'failed', error: `after the reboot: ${outcome.failure.message}` }) }
      if (wentDown === undefined) ctx.status(`down (${outcome.failure.message})`)
      wentDown ??= tick
      last = outcome.failure.message
    } else {
      const after = await bootId(step, outcome.connection, probe)
      const backAt = Date.now()
      if ('error' in after) {
        last = after.error
      } else if (after.id === before.id) {
        if (!wasOldBoot) ctx.status('still up with the old boot id: it has not gone down yet')
        lastOldBoot = true
        last = 'the host answered with the old boot id: it had not gone down yet'
      } else {
        const test = await probe(outcome.connection, 'test-command', step.testCommand)
        if (test.status === 'success') {
          const downtimeMs = backAt - (wentDown ?? commandEnded)
          ctx.status(`back with boot id ${after.id}: down ${seconds(downtimeMs)}, reboot took ${seconds(Date.now() - started)}`)
          if (step.postDelayMs > 0) await sleep(step.postDelayMs)
          const tails = { stdoutTail: sent.stdoutTail, stderrTail: sent.stderrTail }
          return {
            result: result({ status: 'success', exitCode: 0, ...tails, reboot: { downtimeMs, totalMs: Date.now() - started } }),
            connection: outcome.connection
          }
        }
        last = `back with a new boot id, but test-command failed: ${test.error}`
      }
      outcome.connection.close()
    }
    // The next poll about a second after this one began (over TCP, after its banner came).
    await sleep(Math.max(0, tick + POLL_INTERVAL_MS - Date.now()))
  }
  if (ctx.signal?.aborted)
    return {
      result: result({
        status: 'failed',
        cancelled: true,
        error: `cancelled (the job was cancelled) while waiting for the host to come back; last attempt: ${last}`
      })
    }
  return { result: result({ status: 'failed', error: `did not come back within ${seconds(step.timeoutMs)}; last attempt: ${last}` }) }
}
