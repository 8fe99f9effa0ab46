/**
 * tinysshd, a real server with the limits many appliances share: one session channel per connection (the
 * connection closes when that session ends), no SFTP unless configured, and keepalive requests answered with
 * UNIMPLEMENTED. Every plan must work there: several steps, uploads, and a step that is silent for longer
 * than the keepalive limit.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { hostResult, runAction } from '../helpers/action'
import { useWorkspace } from '../helpers/fixtures'
import { canRunTinysshd, startTinysshd, type Tinysshd } from '../helpers/tinysshd'

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex')

describe.runIf(canRunTinysshd)('tinysshd (needs tinysshd, ucspi-tcp and root)', () => {
  let tiny: Tinysshd
  const workspace = useWorkspace('tinysshd')
  beforeAll(async () => {
    tiny = await startTinysshd()
    mkdirSync(join(workspace, 'site/assets'), { recursive: true })
    writeFileSync(join(workspace, 'site/index.html'), '<h1>hi</h1>\n')
    writeFileSync(join(workspace, 'site/assets/app.bin'), Buffer.alloc(300_000, 7))
  })
  afterAll(async () => tiny?.stop())
  const host = (): string => `${tiny.user}@127.0.0.1:${tiny.port}`
  const inputs = (): Record<string, string> => ({ hosts: host(), 'private-key': tiny.clientKey, 'known-hosts': tiny.knownHosts })

  test('a plan of several steps runs, each step on a connection of its own when the server allows one session', async () => {
    const run = await runAction({
      ...inputs(),
      steps: `
- run: echo one
- run: echo two
- run: echo three
`
    })
    const r = hostResult(run, host())
    expect(r.status, run.stdout).toBe('success')
    expect(r.steps.map((s: { stdoutTail: string }) => s.stdoutTail)).toEqual(['one', 'two', 'three'])
  })

  test('a step silent for longer than the keepalive limit is alive: UNIMPLEMENTED is an answer', async () => {
    const run = await runAction({ ...inputs(), 'keepalive-interval': '1s', 'keepalive-count-max': '2', run: 'sleep 5; echo done' })
    const r = hostResult(run, host())
    expect(r.status, run.stdout).toBe('success')
    expect(r.steps[0].stdoutTail).toBe('done')
  })

  test('an upload without SFTP, between run steps, with delete', async () => {
    const root = `/home/${tiny.user}/tiny-up`
    rmSync(root, { recursive: true, force: true })
    const run = await runAction(
      {
        ...inputs(),
        steps: `
- run: mkdir -p tiny-up/stale && touch tiny-up/stale/old
- upload: { from: site, to: tiny-up, delete: true }
- run: ls tiny-up
`
      },
      { env: { GITHUB_WORKSPACE: workspace } }
    )
    const r = hostResult(run, host())
    expect(r.status, run.stdout).toBe('success')
    expect(r.steps[2].stdoutTail).toBe('assets\nindex.html')
    expect(sha(join(root, 'assets/app.bin'))).toBe(sha(join(workspace, 'site/assets/app.bin')))
    rmSync(root, { recursive: true, force: true })
  })
})
