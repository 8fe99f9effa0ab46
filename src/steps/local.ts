import { spawn } from 'node:child_process'
import { runnerEnv } from '../plan/runner-env'
import { Capture, streamOutput } from '../report/output'
import type { LocalStep } from '../plan/settings'
import { CANCEL_GRACE_MS, KILL_GRACE_MS, exitResult, stopCause } from './command-end'
import { stepResult, type StepResult } from '../base/results'
import { fleetVariables, type StepContext, type StepOutcome } from './context'

/** What a local step uses of its context: no connection, the runner's directory, the host's FLEET_* values. */
type LocalContext = Pick<StepContext, 'host' | 'cwd' | 'signal' | 'output' | 'whenDrained'>

/**
 * Runs a local step's command on the runner for one host: through `sh -c` (cmd /c on Windows), in
 * its own process group so a timeout stops the command and everything it started. @actions/exec has
 * no way to stop what it started, so this spawns directly. Never rejects.
 */
export async function runLocal(step: LocalStep, ctx: LocalContext): Promise<StepOutcome> {
  const started = Date.now()
  const windows = process.platform === 'win32'
  const result = await new Promise<StepResult>((resolve) => {
    const options = {
      cwd: ctx.cwd,
      env: { ...runnerEnv(), ...step.env, ...fleetVariables(ctx.host, step) },
      stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe']
    }
    const child = windows
      ? spawn(process.env.ComSpec ?? 'cmd.exe', ['/d', '/s', '/c', `"${step.command}"`], { ...options, windowsVerbatimArguments: true })
      : spawn('/bin/sh', ['-c', step.command], { ...options, detached: true })
    const { stdout: out, stderr: err } = streamOutput(child, ctx)
    const capture = step.capture ? new Capture() : undefined
    if (capture) child.stdout.on('data', (chunk: Buffer) => capture.push(chunk))
    const timers: NodeJS.Timeout[] = []
    const kill = (signal: NodeJS.Signals): void => {
      if (child.pid === undefined) return
      try {
        if (windows) spawn('taskkill', ['/pid', String(child.pid), '/T', '/F'], { stdio: 'ignore' }).on('error', () => {})
        else process.kill(-child.pid, signal)
      } catch {
        // already gone
      }
    }
    /** Why the command is being stopped: its timeout, or the job's cancel. */
    let stopping: 'timeout' | 'cancel' | undefined
    const stop = (why: 'timeout' | 'cancel'): void => {
      if (stopping) return
      stopping = why
      kill('SIGTERM')
      timers.push(setTimeout(() => kill('SIGKILL'), why === 'cancel' ? CANCEL_GRACE_MS : KILL_GRACE_MS))
    }
    const onCancel = (): void => stop('cancel')
    if (ctx.signal?.aborted) onCancel()
    else ctx.signal?.addEventListener('abort', onCancel, { once: true })
    if (step.timeoutMs > 0) timers.push(setTimeout(() => stop('timeout'), step.timeoutMs))
    let done = false
    const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
      if (done) return // 'error' and 'close' both come when the spawn fails
      done = true
      timers.forEach(clearTimeout)
      ctx.signal?.removeEventListener('abort', onCancel)
      out.end()
      err.end()
      const tails = { stdoutTail: out.tailText(), stderrTail: err.tailText(), ...(capture ? { stdout: capture.text() } : {}) }
      if (spawnError)
        return resolve(
          stepResult(step.name, started, { status: 'failed', error: `could not start the local command: ${spawnError.message}`, ...tails })
        )
      if (stopping) {
        const what = stopCause(stopping, step.timeoutMs)
        return resolve(
          stepResult(step.name, started, {
            status: 'failed',
            exitCode: code,
            signal,
            error: `${what}; the local command was stopped`,
            cancelled: stopping === 'cancel',
            ...tails
          })
        )
      }
      resolve(exitResult(step.name, started, code, signal, tails))
    }
    child.on('error', (e) => finish(null, null, e))
    child.on('close', (code, signal) => finish(code, signal))
  })
  return { result }
}
