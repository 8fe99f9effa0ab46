/**
 * Runner files and the report, run as the runner runs the action (every action.yml default filled in),
 * against a real sshd: files are read and written only inside the workspace, the report survives a part
 * that cannot be written, and what ssh-config says wins over an input the workflow did not write.
 */
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { runAction } from '../helpers/action'
import { useSshd, useWorkspace } from '../helpers/fixtures'
import { hostName, type Sshd } from '../helpers/sshd'

let sshd: Sshd
const workspace = useWorkspace('runner-files')
const outside = mkdtempSync(join(tmpdir(), 'ssh-fleet-outside-'))
afterAll(() => rmSync(outside, { recursive: true, force: true }))
useSshd({ ports: 2 }, (started) => (sshd = started))
const base = (): Record<string, string> => ({
  hosts: hostName(sshd, sshd.ports[0]),
  'private-key': sshd.clientKey,
  'known-hosts': sshd.knownHosts
})
const env = { env: { GITHUB_WORKSPACE: workspace } }
const logins = (): number => (sshd.log().match(/Accepted publickey/g) ?? []).length

describe('runner files stay in the workspace', () => {
  test('a run-file that is a link to /proc/self/environ is an input error, and nothing runs', async () => {
    symlinkSync('/proc/self/environ', join(workspace, 'environ.sh'))
    const before = logins()
    const run = await runAction({ ...base(), 'run-file': 'environ.sh', password: 'hunter2-secret' }, env)
    expect(run.code).toBe(1)
    expect(run.stdout).toContain("::error::Invalid input 'run-file': 'environ.sh': environ.sh is a symbolic link to /proc/")
    expect(run.stdout).toContain('Nothing was run on any host.')
    expect(logins()).toBe(before)
  })

  test('a results file swapped for a link to a file outside during the run: the outside file is untouched', async () => {
    const target = join(outside, 'precious.txt')
    writeFileSync(target, 'precious\n')
    // A step of the plan (as a pull request's script could) turns the results path into a link out.
    const run = await runAction(
      { ...base(), 'results-file': 'swapped.json', steps: `- local: ln -sf ${target} swapped.json\n- run: echo ok` },
      env
    )
    expect(run.code, run.stdout).toBe(0)
    expect(readFileSync(target, 'utf8')).toBe('precious\n')
    expect(lstatSync(join(workspace, 'swapped.json')).isSymbolicLink()).toBe(false)
    expect(JSON.parse(readFileSync(join(workspace, 'swapped.json'), 'utf8')).results[0].status).toBe('success')
  })

  test('a results file path below a file is an input error before anything connects', async () => {
    writeFileSync(join(workspace, 'README.md'), 'readme')
    const before = logins()
    const run = await runAction({ ...base(), 'results-file': 'README.md/shard.json', run: 'true' }, env)
    expect(run.code).toBe(1)
    expect(run.stdout).toContain("::error::Invalid input 'results-file': 'README.md/shard.json': README.md is not a directory")
    expect(logins()).toBe(before)
  })
})

describe('the report survives', () => {
  test('a results file that cannot be written after a real run: outputs, summary and notice all the same, and the failure said', async () => {
    // The path was fine when checked; a step then puts a directory where the file goes.
    const run = await runAction(
      { ...base(), 'results-file': 'late/shard.json', steps: '- run: echo deployed\n- local: mkdir -p late/shard.json' },
      env
    )
    expect(run.code).toBe(1)
    expect(run.results.map((r) => r.status)).toEqual(['success'])
    expect(run.outputs.succeeded).toBe(hostName(sshd, sshd.ports[0]))
    expect(run.summary).toContain('success')
    expect(run.annotations.some((a) => a.startsWith('::notice'))).toBe(true)
    expect(run.stdout).toMatch(/::error::the results file could not be written: '[^']*late\/shard\.json' is a directory/)
    // Every error is printed outside the log's stop-commands fence, where the runner reads it.
    const fence = /::stop-commands::(\S+)/.exec(run.stdout)
    if (fence) expect(run.stdout.lastIndexOf(`::${fence[1]}::`)).toBeLessThan(run.stdout.indexOf('::error::'))
  })
})

describe('ssh-config wins over an input the workflow did not write', () => {
  test('Host app-1 / Port N reaches the host on N with every action.yml default filled in', async () => {
    const [a, b] = sshd.ports
    const config = [
      'Host app-1',
      `  Port ${a}`,
      'Host app-2',
      `  Port ${b}`,
      'Host app-*',
      '  HostName 127.0.0.1',
      `  User ${sshd.user}`
    ].join('\n')
    const run = await runAction(
      {
        hosts: 'app-1 app-2',
        'ssh-config': config,
        'private-key': sshd.clientKey,
        'known-hosts': sshd.knownHosts,
        run: 'echo "on ${SSH_CONNECTION##* }"'
      },
      env
    )
    expect(run.code, run.stdout).toBe(0)
    expect(run.results.map((r) => [r.host, r.steps[0].stdoutTail])).toEqual([
      ['app-1', `on ${a}`],
      ['app-2', `on ${b}`]
    ])
  })
})

describe('nothing from ssh-config runs a program', () => {
  test('CanonicalizeHostName and Match exec with a fake nslookup and a marker command on PATH: the marker never appears, even in dry-run and on a real run', async () => {
    const bin = mkdtempSync(join(outside, 'bin-'))
    const marker = join(outside, 'ran')
    writeFileSync(join(bin, 'nslookup'), `#!/bin/sh\necho "nslookup $*" >> ${marker}\nenv >> ${marker}\n`, { mode: 0o755 })
    writeFileSync(join(bin, 'mark'), `#!/bin/sh\necho "mark $*" >> ${marker}\n`, { mode: 0o755 })
    const [a] = sshd.ports
    const config = [
      'Match exec "mark exec"',
      '  Port 1',
      'Host app-1',
      // The ssh-config package's compute() ran nslookup for this, with every INPUT_* in its environment.
      '  CanonicalizeHostName yes',
      '  CanonicalDomains example.com example.org',
      `  User ${sshd.user}`,
      'Match canonical host app-1.example.com',
      '  Port 1',
      'Host app-1 app-1.example.com',
      `  Port ${a}`,
      '  HostName 127.0.0.1'
    ].join('\n')
    const inputs = {
      hosts: 'app-1',
      'ssh-config': config,
      'private-key': sshd.clientKey,
      'known-hosts': sshd.knownHosts,
      run: 'echo "on ${SSH_CONNECTION##* }"'
    }
    const path = { env: { GITHUB_WORKSPACE: workspace, PATH: `${bin}:${process.env.PATH}` } }
    const dry = await runAction({ ...inputs, 'dry-run': 'true', password: 'sekrit-in-env' }, path)
    expect(dry.code, dry.stdout).toBe(0)
    const run = await runAction(inputs, path)
    expect(run.code, run.stdout).toBe(0)
    expect(existsSync(marker) ? readFileSync(marker, 'utf8') : '').toBe('')
    // Neither keyword changed the route, and the warning says both were ignored.
    expect(run.results[0].steps[0].stdoutTail).toBe(`on ${a}`)
    const warning = run.annotations.find((l) => l.startsWith('::warning') && l.includes('ssh-config'))
    expect(warning).toContain('CanonicalizeHostName is not supported by ssh-fleet and was ignored')
    expect(warning).toContain('Match exec is not supported by ssh-fleet and was ignored')
    expect(warning).toContain('Match canonical is not supported by ssh-fleet and was ignored')
  })
})
