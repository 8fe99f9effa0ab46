/** Local steps on this machine's shell (sh, or cmd on Windows), as CI runs them on all three OSes. */
import { describe, expect, test, vi } from 'vitest'
import { runLocal } from '../../src/steps/local'
import { alive } from '../helpers/sshd'
import type { Host, LocalStep } from '../../src/plan/settings'

const windows = process.platform === 'win32'
const host: Host = { name: 'deploy@web1:2222', user: 'deploy', hostname: 'web1', port: 2222, index: 3 }
const step = (command: string, extra: Partial<LocalStep> = {}): LocalStep => ({
  kind: 'local',
  name: 'local',
  command,
  env: {},
  timeoutMs: 0,
  retries: 0,
  retryDelayMs: 0,
  continueOnError: false,
  runOnce: false,
  capture: false,
  ...extra
})
const run = (s: LocalStep) => {
  const lines: string[] = []
  return runLocal(s, {
    host,
    cwd: process.cwd(),
    whenDrained: (r) => r(),
    output: (stream, l) => lines.push(...l.map((x) => `${stream}:${x}`)) > 0
  }).then(({ result: r }) => ({ r, lines }))
}

describe('runLocal', () => {
  test('sees the host in FLEET_* variables and the step env', async () => {
    const { r, lines } = await run(
      step(
        windows
          ? 'echo %FLEET_HOST% %FLEET_USER% %FLEET_PORT% %FLEET_HOST_INDEX% %STAGE%'
          : 'echo $FLEET_HOST $FLEET_USER $FLEET_PORT $FLEET_HOST_INDEX $STAGE',
        { env: { STAGE: 'blue' } }
      )
    )
    expect(r).toMatchObject({ status: 'success', exitCode: 0 })
    expect(lines.map((l) => l.trim())).toEqual(['stdout:web1 deploy 2222 3 blue'])
  })

  test("does not see the action's inputs (INPUT_PASSWORD and the like)", async () => {
    vi.stubEnv('INPUT_PASSWORD', 'hunter2')
    vi.stubEnv('INPUT_PRIVATE-KEY', 'key')
    try {
      const { r, lines } = await run(step(windows ? 'set' : 'env'))
      expect(r.status).toBe('success')
      expect(lines.some((l) => /INPUT_/i.test(l))).toBe(false)
      expect(lines.some((l) => l.includes('FLEET_HOST=web1'))).toBe(true)
    } finally {
      vi.unstubAllEnvs()
    }
  })

  test('a non-zero exit fails with its code and stderr', async () => {
    const { r } = await run(step(windows ? 'echo refused 1>&2 & exit 4' : 'echo refused >&2; exit 4'))
    expect(r).toMatchObject({ status: 'failed', exitCode: 4, error: 'exit code 4' })
    expect(r.stderrTail.trim()).toBe('refused')
  })

  test("a command the runner's shell cannot find is a failed step with the shell's exit code, not a crash", async () => {
    const { r } = await run(step('this-command-does-not-exist-ssh-fleet'))
    expect(r.status).toBe('failed')
    expect(r.exitCode).toBe(windows ? 1 : 127)
  })

  test('a timeout stops the command', async () => {
    const started = Date.now()
    const { r } = await run(step(windows ? 'ping -n 30 127.0.0.1 >NUL' : 'sleep 30', { timeoutMs: 500 }))
    expect(r).toMatchObject({ status: 'failed', error: 'timed out after 0.5s; the local command was stopped' })
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  test.skipIf(windows)('a cancel stops the command and what it started, and says so', async () => {
    const cancel = new AbortController()
    const lines: string[] = []
    const started = Date.now()
    const running = runLocal(step('sleep 30 & echo $!; wait'), {
      host,
      cwd: process.cwd(),
      whenDrained: (r) => r(),
      output: (_s, l) => lines.push(...l) > 0,
      signal: cancel.signal
    })
    await new Promise((r) => setTimeout(r, 300))
    cancel.abort()
    const { result: r } = await running
    expect(r).toMatchObject({
      status: 'failed',
      cancelled: true,
      error: 'cancelled (the job was cancelled); the local command was stopped'
    })
    expect(Date.now() - started).toBeLessThan(3000)
    // A signalled process takes a moment to be gone.
    for (let i = 0; i < 20 && alive(lines[0]); i++) await new Promise((res) => setTimeout(res, 50))
    expect(alive(lines[0])).toBe(false)
  })
})
