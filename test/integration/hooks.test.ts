/**
 * on-failure and always steps get what plan steps get: the run-once claim and the step's own
 * `concurrency`, and an environment that a server's text cannot break (a NUL in FLEET_ERROR made
 * spawn throw, and the rollback never ran).
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { hostResult, runAction } from '../helpers/action'
import { useSshd, useWorkspace } from '../helpers/fixtures'
import { disconnectingServer } from '../helpers/ssh2-server'
import { hostList, hostName, peakOverlap, type Sshd } from '../helpers/sshd'

let sshd: Sshd
useSshd({ ports: 4 }, (started) => (sshd = started))
const workspace = useWorkspace('hooks')

const base = (): Record<string, string> => ({ hosts: hostList(sshd), 'private-key': sshd.clientKey, 'known-hosts': sshd.knownHosts })
/** A file in the shared directory that every host may append to. */
function sharedFile(label: string): string {
  const file = join(sshd.shared, `${label}-${Math.random().toString(36).slice(2)}`)
  writeFileSync(file, '')
  chmodSync(file, 0o666)
  return file
}

describe('hooks share the plan steps guards', () => {
  test('a run-once on-failure step on 4 failing hosts runs once; the others record it skipped', async () => {
    const file = sharedFile('rollback')
    const run = await runAction({
      ...base(),
      run: 'exit 3',
      'on-failure': `- name: Rollback\n  run: echo "rollback \${SSH_CONNECTION##* }" >> ${file}\n  run-once: true`
    })
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(1)
    const hooks = sshd.ports.map((p) => hostResult(run, hostName(sshd, p)).steps[1])
    expect(hooks.filter((s) => s.status === 'success')).toHaveLength(1)
    const ranOn = hooks.find((s) => s.status === 'success')
    expect(ranOn).toMatchObject({ name: 'Rollback', phase: 'on-failure' })
    for (const s of hooks.filter((h) => h.status !== 'success'))
      expect(s).toMatchObject({ name: 'Rollback', phase: 'on-failure', status: 'skipped', error: expect.stringMatching(/^run once, on /) })
  })

  test('an always step with concurrency: 1 never overlaps across hosts', async () => {
    const file = sharedFile('always')
    const run = await runAction({
      ...base(),
      run: 'true',
      always: `- name: Re-add\n  run: echo "+ $(date +%s%N)" >> ${file}; sleep 0.3; echo "- $(date +%s%N)" >> ${file}\n  concurrency: 1`
    })
    expect(run.code).toBe(0)
    expect(peakOverlap(file)).toEqual({ peak: 1, events: 8 })
  })
})

describe('hook environment', () => {
  test('a NUL and control characters in a pre-auth DISCONNECT text: local on-failure and always steps still run and see the text cleaned', async () => {
    // A raw server of ours: no real sshd sends a DISCONNECT with a NUL on cue.
    const server = await disconnectingServer('bye\0after\x1b[31m\nsecond line')
    const port = (server.address() as { port: number }).port
    const seen = (phase: string): string => join(workspace, `${phase}.txt`)
    try {
      const run = await runAction(
        {
          hosts: `deploy@127.0.0.1:${port}`,
          password: 'not-used',
          'connect-retries': '0',
          run: 'true',
          'on-failure': `- local: printf '%s' "$FLEET_ERROR" > ${seen('on-failure')}`,
          always: `- local: printf '%s' "$FLEET_ERROR" > ${seen('always')}`
        },
        { env: { GITHUB_WORKSPACE: workspace } }
      )
      expect(run.results[0].status).toBe('unreachable')
      for (const phase of ['on-failure', 'always']) {
        expect(existsSync(seen(phase))).toBe(true)
        expect(readFileSync(seen(phase), 'utf8')).toBe('the server disconnected (reason 2): bye?after?[31m\nsecond line')
      }
      expect(run.results[0].steps.map((s: { phase: string; status: string }) => [s.phase, s.status])).toEqual([
        ['on-failure', 'success'],
        ['always', 'success']
      ])
    } finally {
      server.close()
    }
  })
})
