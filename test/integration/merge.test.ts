/**
 * One fleet across matrix jobs: three shards of a real sshd fleet run through dist/ and write their
 * results files, then the merge bundle (dist/merge) reports the whole fleet, as a needs: job would.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { inline } from '../../src/report/markdown'
import { MERGE_ACTION, runAction } from '../helpers/action'
import { useSshd, useWorkspace } from '../helpers/fixtures'
import { hostList, hostName, type Sshd } from '../helpers/sshd'

let sshd: Sshd
const workspace = useWorkspace('merge')
useSshd({ ports: 7 }, (started) => (sshd = started))

const name = (port: number): string => hostName(sshd, port)

/** The runner's variables for a run's log link. */
const runEnv = (id: string): Record<string, string> => ({
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_REPOSITORY: 'acme/site',
  GITHUB_RUN_ID: id,
  GITHUB_RUN_ATTEMPT: ''
})

describe('shards and merge', () => {
  test('three shards write results files; the merge reports every host exactly once', async () => {
    const bad = sshd.ports[4]
    const shards = await Promise.all(
      [1, 2, 3].map((k) =>
        runAction(
          {
            hosts: hostList(sshd),
            'private-key': sshd.clientKey,
            'known-hosts': sshd.knownHosts,
            shard: `${k}/3`,
            'results-file': `ssh-fleet-results/shard-${k}.json`,
            steps: `- name: deploy\n  run: 'if [ "\${SSH_CONNECTION##* }" = ${bad} ]; then echo "disk full" >&2; exit 4; fi; echo deployed'`
          },
          // Each job's log link (a matrix's jobs share the run; the run ids differ here only to tell them apart).
          { env: { GITHUB_WORKSPACE: workspace, ...runEnv(`90${k}`) } }
        )
      )
    )
    expect(shards.map((s) => s.code)).toEqual([0, 1, 0]) // port index 4 is in shard 2 (every 3rd from the 2nd)
    const file = JSON.parse(readFileSync(join(workspace, 'ssh-fleet-results/shard-2.json'), 'utf8'))
    expect(file.run).toMatchObject({
      shard: { index: 2, count: 3 },
      hosts: [name(sshd.ports[1]), name(sshd.ports[4])],
      inventory: sshd.ports.map(name),
      plan: [{ name: 'deploy', kind: 'run' }],
      runUrl: 'https://github.com/acme/site/actions/runs/902'
    })
    expect(Date.parse(file.run.endedAt)).toBeGreaterThanOrEqual(Date.parse(file.run.startedAt))

    const merged = await runAction({}, { bundle: MERGE_ACTION, env: { GITHUB_WORKSPACE: workspace } })
    expect(merged.code).toBe(1)
    expect(merged.results.map((r) => r.host)).toEqual(sshd.ports.map(name))
    expect(merged.results.find((r) => r.host === name(bad))).toMatchObject({ status: 'failed', exitCode: 4, error: 'exit code 4' })
    expect(merged.outputs.failed).toBe(name(bad))
    expect(merged.outputs.succeeded.split('\n')).toHaveLength(6)
    expect(merged.stdout).toContain('3 results files merged')
    expect(merged.annotations.filter((a) => a.startsWith('::error title='))).toEqual([
      expect.stringContaining('exit code 4%0Astderr:%0Adisk full')
    ])
    expect(merged.annotations.find((a) => a.startsWith('::notice'))).toMatch(/^::notice::6\/7 hosts succeeded in \d+\.\ds \(1 failed\)$/)
    expect(merged.stdout).toContain(`::error::1 of 7 hosts failed: ${name(bad)}`)
    // Every host exactly once in the summary's table, the step's failure count, the slowest hosts.
    for (const port of sshd.ports) expect(merged.summary.split(`| ${inline(name(port))} |`)).toHaveLength(2)
    expect(merged.summary).toContain('| deploy | 1 |')
    expect(merged.summary).toContain('Slowest hosts: ')
    // Each shard's log, linked from the merged report (files are read in path order).
    expect(merged.summary).toContain(
      'Logs: [shard 1/3](https://github.com/acme/site/actions/runs/901) · [shard 2/3](https://github.com/acme/site/actions/runs/902) · [shard 3/3](https://github.com/acme/site/actions/runs/903)'
    )

    const report = await runAction({ 'fail-on-failure': 'false' }, { bundle: MERGE_ACTION, env: { GITHUB_WORKSPACE: workspace } })
    expect(report.code).toBe(0)
    expect(report.outputs.failed).toBe(name(bad))
  })

  test('a shard without its file: named, its hosts skipped with why, the merge fails', async () => {
    rmSync(join(workspace, 'ssh-fleet-results/shard-3.json'))
    expect(readdirSync(join(workspace, 'ssh-fleet-results'))).toHaveLength(2)
    const merged = await runAction({ 'fail-on-failure': 'false' }, { bundle: MERGE_ACTION, env: { GITHUB_WORKSPACE: workspace } })
    expect(merged.results.filter((r) => r.status === 'skipped').map((r) => r.host)).toEqual([name(sshd.ports[2]), name(sshd.ports[5])])
    expect(merged.stdout).toContain('2 results files merged; shard 3/3 wrote no results file: 2 hosts have no results')
    const strict = await runAction({}, { bundle: MERGE_ACTION, env: { GITHUB_WORKSPACE: workspace } })
    expect(strict.code).toBe(1)
    expect(strict.stdout).toMatch(/::error::1 of 7 hosts failed: .*; shard 3\/3 wrote no results file/)
  })

  test('a foreign file or no file at all fails the merge, naming it', async () => {
    const foreign = await runAction({ files: 'package.json' }, { bundle: MERGE_ACTION, env: { GITHUB_WORKSPACE: process.cwd() } })
    expect(foreign.code).toBe(1)
    expect(foreign.stdout).toContain('::error::ssh-fleet merge: package.json: not an ssh-fleet results file')
    const none = await runAction({ files: 'nothing-here/**/*.json' }, { bundle: MERGE_ACTION, env: { GITHUB_WORKSPACE: workspace } })
    expect(none.code).toBe(1)
    expect(none.stdout).toContain("::error::Invalid input 'files': 'nothing-here/**/*.json' matches nothing")
  })

  test('forged files: a __proto__ or shell-word host, a null plan, a link out: the merge fails naming the file, and writes no forged name', async () => {
    const forged = join(workspace, 'forged')
    mkdirSync(forged, { recursive: true })
    const file = JSON.parse(readFileSync(join(workspace, 'ssh-fleet-results/shard-1.json'), 'utf8'))
    const cases: Array<[string, (doc: any) => void, string]> = [
      ['proto.json', (d) => (d.results[0].host = d.run.hosts[0] = d.run.inventory[0] = '__proto__'), 'is not a host entry'],
      ['shell.json', (d) => (d.results[0].host = d.run.hosts[0] = d.run.inventory[0] = 'x; rm -rf /'), 'is not a host entry'],
      ['null-plan.json', (d) => (d.run.plan = null), 'run.plan is not a list']
    ]
    for (const [fileName, change, why] of cases) {
      const doc = structuredClone(file)
      change(doc)
      writeFileSync(join(forged, fileName), JSON.stringify(doc))
      const merged = await runAction({ files: `forged/${fileName}` }, { bundle: MERGE_ACTION, env: { GITHUB_WORKSPACE: workspace } })
      expect(merged.code, fileName).toBe(1)
      expect(merged.stdout).toContain(`::error::ssh-fleet merge: forged/${fileName}: malformed`)
      expect(merged.stdout).toContain(why)
      expect(merged.outputs.failed ?? '').not.toContain('rm -rf')
    }
    const elsewhere = mkdtempSync(join(tmpdir(), 'ssh-fleet-elsewhere-'))
    try {
      writeFileSync(join(elsewhere, 'shard.json'), JSON.stringify(file))
      symlinkSync(join(elsewhere, 'shard.json'), join(forged, 'link.json'))
      const merged = await runAction({ files: 'forged/link.json' }, { bundle: MERGE_ACTION, env: { GITHUB_WORKSPACE: workspace } })
      expect(merged.code).toBe(1)
      expect(merged.stdout).toMatch(/::error::.*forged\/link\.json is a symbolic link to .*, outside the workspace/)
    } finally {
      rmSync(elsewhere, { recursive: true, force: true })
    }
  })
})
