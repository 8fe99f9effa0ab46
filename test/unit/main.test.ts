/**
 * main's guarantees that need a failure no real server can cause on cue: an exception thrown after the
 * log's stop-commands fence opened (the scheduler is replaced by one that throws, which is why it is a fake).
 */
import { afterEach, expect, test, vi } from 'vitest'

vi.mock('../../src/run/scheduler', () => ({
  runFleet: async () => {
    throw new Error('internal failure mid-run')
  }
}))

afterEach(() => {
  vi.unstubAllEnvs()
  vi.restoreAllMocks()
})

test('an exception after the fence opened: the error is printed after the fence closed, where the runner reads it', async () => {
  const { run } = await import('../../src/main')
  for (const [name, value] of Object.entries({ hosts: 'u@127.0.0.1:1', password: 'x', run: 'true', 'host-key-check': 'off' }))
    vi.stubEnv(`INPUT_${name.toUpperCase()}`, value)
  vi.stubEnv('GITHUB_OUTPUT', '')
  vi.stubEnv('GITHUB_STEP_SUMMARY', '')
  const writes: string[] = []
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    writes.push(String(chunk))
    return true
  })
  await run()
  vi.restoreAllMocks()
  const out = writes.join('')
  const token = /::stop-commands::(\w+)/.exec(out)?.[1]
  expect(token, out).toBeDefined()
  const error = out.indexOf('::error::ssh-fleet failed: internal failure mid-run')
  expect(error, out).toBeGreaterThan(0)
  expect(out.lastIndexOf(`::${token}::`)).toBeGreaterThan(out.lastIndexOf(`::stop-commands::${token}`))
  expect(out.lastIndexOf(`::${token}::`)).toBeLessThan(error)
  process.exitCode = 0
})
