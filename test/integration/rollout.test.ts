/**
 * Following a rolling run from its log and its summary, through the bundle against a real sshd (one
 * port a host): batch lines, a progress count, which batch and host stopped the rollout, and hosts
 * stopped mid-plan told apart from hosts never started.
 */
import { describe, expect, test } from 'vitest'
import { hostResult, runAction } from '../helpers/action'
import { useSshd } from '../helpers/fixtures'
import { hostList, hostName, type Sshd } from '../helpers/sshd'

let sshd: Sshd
useSshd({ ports: 8 }, (started) => (sshd = started))

const PORT = '${SSH_CONNECTION##* }'

describe('watching a rollout', () => {
  test('8 hosts in batches of 2, the 6th fails its 2nd step: batch lines, progress, the halt, stopped vs not started', async () => {
    const ports = sshd.ports
    const name = (i: number): string => hostName(sshd, ports[i])
    const bad = ports[5]
    // Step 1 takes 2 s, so batches take about 3 s each and the run passes the 5 s between progress
    // lines; in batch 3, host 5 fails step 2 half a second into host 4's (1 s).
    const steps = `
- name: prepare
  run: |
    sleep 2
    [ "${PORT}" != ${bad} ] || sleep 0.5
- name: deploy
  run: |
    [ "${PORT}" != ${bad} ] || exit 7
    sleep 1
- name: verify
  run: 'true'
`
    const run = await runAction(
      { hosts: hostList(sshd), 'private-key': sshd.clientKey, 'known-hosts': sshd.knownHosts, batch: '2', steps },
      {
        env: {
          GITHUB_ACTION: 'deploy-web',
          GITHUB_SERVER_URL: 'https://github.com',
          GITHUB_REPOSITORY: 'acme/site',
          GITHUB_RUN_ID: '4242',
          GITHUB_RUN_ATTEMPT: '2'
        }
      }
    )
    expect(run.code).toBe(1)
    const log = run.stdout
    // The log: each batch's start and outcome, a progress count, the halt at once and at its batch's end.
    expect(log).toContain(`batch 1/4: 2 hosts (${name(0)}, ${name(1)})`)
    expect(log).toMatch(/batch 1\/4 done in [\d.]+s: 2 succeeded\n/)
    expect(log).toContain(`batch 3/4: 2 hosts (${name(4)}, ${name(5)})`)
    expect(log).toMatch(/batch 3\/4 done in [\d.]+s: 1 failed, 1 skipped\n/)
    expect(log).not.toContain('batch 4/4')
    expect(log).toMatch(/^\[\d\/8 hosts done, 0 failed, \d running\]$/m)
    const halt = `the rollout stopped in batch 3/4 when ${name(5)} failed: more than 0 hosts failed (max-failures)`
    expect(log).toContain(`${halt}; hosts in flight stop before their next step, no other host starts`)
    expect(log).toContain(`${halt}: 1 host stopped mid-plan, 2 not started`)
    // The results: a code each; host 4 had run two steps of three, hosts 6 and 7 none.
    expect(hostResult(run, name(4))).toMatchObject({ status: 'skipped', skipCode: 'stopped', error: `stopped after step 2 of 3: ${halt}` })
    expect(hostResult(run, name(4)).steps.map((s: { name: string }) => s.name)).toEqual(['prepare', 'deploy'])
    for (const i of [6, 7])
      expect(hostResult(run, name(i))).toMatchObject({ skipCode: 'not-started', error: `not started: ${halt}`, steps: [] })
    // The failure line (an error annotation) names the halt.
    expect(run.annotations.find((a) => a.startsWith('::error::1 of 8 hosts failed'))).toContain(
      `${halt}: 1 stopped mid-plan, 2 not started`
    )
    // The summary: titled with the step's id, linked to this run's attempt, a column per step, the halt, the timeline.
    const md = run.summary
    expect(md).toMatch(/^## ssh-fleet: deploy-web\n/)
    expect(md).toContain('[run log](https://github.com/acme/site/actions/runs/4242/attempts/2)')
    expect(md).toContain('| Host | Status | prepare | deploy | verify | Duration |')
    expect(md).toMatch(/\| ⏸️ stopped after step 2 of 3 \| ✅ [\d.]+s \| ✅ [\d.]+s \| {2}\|/)
    expect(md).toMatch(/\| ❌ failed \| ✅ [\d.]+s \| ❌ [\d.]+s exit 7 \| {2}\|/)
    expect(md.match(/\| ⏭️ not started \|/g)).toHaveLength(2)
    expect(md).toContain('**the rollout stopped in batch 3/4 when')
    expect(md).toContain('### Timeline\n\n```mermaid\ngantt\n')
    expect(md).toContain(`    section ${sshd.user}@127.0.0.1∶${ports[0]}\n    prepare :done, `)
  }, 60_000)
})
