import { spawn } from 'node:child_process'
import { streamOutput, type OutputSink } from '../report/output'
import type { Host, LocalStep } from '../plan/settings'
import { KILL_GRACE_MS, exitResult, stepResult, type StepResult } from './script'

export interface LocalContext extends OutputSink {
  /** Where relative paths resolve: GITHUB_WORKSPACE on a runner. */
  cwd: string
}

/** The variables a local step sees about the host it runs for. */
export function fleetEnv(host: Host): Record<string, string> {
  return { FLEET_HOST: host.hostname, FLEET_USER: host.user, FLEET_PORT: String(host.port), FLEET_HOST_INDEX: String(host.index) }
}

/** The runner's environment without the action's inputs (INPUT_PASSWORD, INPUT_PRIVATE-KEY, …). */
export function runnerEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toUpperCase().startsWith('INPUT_')))
}

/**
 * Runs a local step's command on the runner for one host: through `sh -c` (cmd /c on Windows), in
 * its own process group so a timeout stops the command and everything it started. @actions/exec has
 * no way to stop what it started, so this spawns directly. Never rejects.
 */
export function runLocal(step: LocalStep, host: Host, ctx: LocalContext): Promise<StepResult> {
  const started = Date.now()
  const windows = process.platform === 'win32'
  return new Promise((resolve) => {
    const options = { cwd: ctx.cwd, env: { ...runnerEnv(), ...step.env, ...fleetEnv(host) }, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] }
    const child = windows
      ? spawn(process.env.ComSpec ?? 'cmd.exe', ['/d', '/s', '/c', `"${step.command}"`], { ...options, windowsVerbatimArguments: true })
      : spawn('/bin/sh', ['-c', step.command], { ...options, detached: true })
    const { stdout: out, stderr: err } = streamOutput(child, ctx)
    const timers: NodeJS.Timeout[] = []
    let timedOut = false
    const kill = (signal: NodeJS.Signals): void => {
      if (child.pid === undefined) return
      try {
        if (windows) spawn('taskkill', ['/pid', String(child.pid), '/T', '/F'], { stdio: 'ignore' }).on('error', () => {})
        else process.kill(-child.pid, signal)
      } catch {
        // already gone
      }
    }
    if (step.timeoutMs > 0) {
      timers.push(
        setTimeout(() => {
          timedOut = true
          kill('SIGTERM')
          timers.push(setTimeout(() => kill('SIGKILL'), KILL_GRACE_MS))
        }, step.timeoutMs)
      )
    }
    let done = false
    const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
      if (done) return // 'error' and 'close' both come when the spawn fails
      done = true
      timers.forEach(clearTimeout)
      out.end()
      err.end()
      const tails = { stdoutTail: out.tailText(), stderrTail: err.tailText() }
      if (spawnError) return resolve(stepResult(step.name, started, { status: 'failed', error: `could not start the local command: ${spawnError.message}`, ...tails }))
      if (timedOut) return resolve(stepResult(step.name, started, { status: 'failed', exitCode: code, signal, error: `timed out after ${step.timeoutMs / 1000}s; the local command was stopped`, ...tails }))
      resolve(exitResult(step.name, started, code, signal, tails))
    }
    child.on('error', (e) => finish(null, null, e))
    child.on('close', (code, signal) => finish(code, signal))
  })
}
