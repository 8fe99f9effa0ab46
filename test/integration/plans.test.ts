/**
 * Multi-step plans against a real sshd: strategies, run-once, rolling batches, shards, dry-run,
 * per-step options, and a jump host in front of hosts that only it can reach (network namespace).
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { hostResult, runAction } from '../helpers/action'
import { useSshd } from '../helpers/fixtures'
import { createNetns } from '../helpers/netns'
import { freePorts, hostList, hostName, isRoot, startSshd, type Sshd } from '../helpers/sshd'

let sshd: Sshd
useSshd({ ports: 6 }, (started) => (sshd = started))

const PORT = '${SSH_CONNECTION##* }'
const name = (port: number, s: Sshd = sshd): string => hostName(s, port)
const base = (ports = sshd.ports): Record<string, string> => ({
  hosts: hostList(sshd, ports),
  'private-key': sshd.clientKey,
  'known-hosts': sshd.knownHosts
})
/** A file in the shared directory that every host may append to. */
function sharedFile(label: string): string {
  const file = join(sshd.shared, `${label}-${Date.now()}-${Math.random().toString(36).slice(2)}`)
  writeFileSync(file, '')
  chmodSync(file, 0o666)
  return file
}
/** Lines `event port nanoseconds` appended by the hosts. */
function events(file: string): Array<{ event: string; port: number; at: bigint }> {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [event, port, at] = l.split(' ')
      return { event, port: Number(port), at: BigInt(at) }
    })
}
const mark = (file: string, event: string): string => `echo "${event} ${PORT} $(date +%s%N)" >> ${file}`

describe('strategies', () => {
  test('step: each step ends on every host before the next starts, proven by host timestamps', async () => {
    const file = sharedFile('lockstep')
    // The first step takes longer on some hosts, so a host-by-host run would interleave.
    const steps = `
- name: one
  run: |
    ${mark(file, 'one-start')}
    sleep 0.$(( ${PORT} % 5 ))
    ${mark(file, 'one-end')}
- name: two
  run: |
    ${mark(file, 'two-start')}
    ${mark(file, 'two-end')}
`
    const run = await runAction({ ...base(), steps, strategy: 'step', concurrency: '6' })
    expect(run.code).toBe(0)
    const e = events(file)
    expect(e).toHaveLength(24)
    const lastOne = e.filter((x) => x.event === 'one-end').reduce((m, x) => (x.at > m ? x.at : m), 0n)
    const firstTwo = e
      .filter((x) => x.event === 'two-start')
      .reduce((m, x) => (x.at < m ? x.at : m), BigInt(Number.MAX_SAFE_INTEGER) * 1000n)
    expect(lastOne < firstTwo).toBe(true)
    for (const r of run.results)
      expect(r.steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`)).toEqual(['one:success', 'two:success'])
    expect(run.summary).toContain('| Host | Status | one | two | Duration |')
  })

  test('host: hosts go through the plan on their own, one connection each for all steps', async () => {
    const file = sharedFile('host')
    const steps = `
- run: ${mark(file, 'a')}
- run: ${mark(file, 'b')}
- run: ${mark(file, 'c')}
`
    const logins = (): number => (sshd.log().match(/Accepted publickey/g) ?? []).length
    const before = logins()
    const run = await runAction({ ...base(sshd.ports.slice(0, 3)), steps, concurrency: '1' })
    expect(run.code).toBe(0)
    expect(events(file).map((x) => `${x.event}${sshd.ports.indexOf(x.port)}`)).toEqual([
      'a0',
      'b0',
      'c0',
      'a1',
      'b1',
      'c1',
      'a2',
      'b2',
      'c2'
    ])
    expect(logins() - before).toBe(3)
    expect(run.results.every((r) => r.attempts === 1)).toBe(true)
  })
})

describe('run-once', () => {
  test('runs on exactly one host, and the others pass it only after it finished', async () => {
    const file = sharedFile('once')
    const steps = `
- name: Pull
  run: ${mark(file, 'pull')}
- name: Migrate
  run-once: true
  run: |
    sleep 0.5
    ${mark(file, 'migrate')}
- name: Restart
  run: ${mark(file, 'restart')}
`
    const run = await runAction({ ...base(), steps, concurrency: '6' })
    expect(run.code).toBe(0)
    const e = events(file)
    const migrations = e.filter((x) => x.event === 'migrate')
    expect(migrations).toHaveLength(1)
    expect(e.filter((x) => x.event === 'restart')).toHaveLength(6)
    for (const restart of e.filter((x) => x.event === 'restart')) expect(restart.at > migrations[0].at).toBe(true)
    const ranOn = name(migrations[0].port)
    for (const r of run.results) {
      const migrate = r.steps.find((s: { name: string }) => s.name === 'Migrate')
      expect(migrate.status).toBe(r.host === ranOn ? 'success' : 'skipped')
    }
  })
})

describe('rolling batches', () => {
  test('a failing host in batch 2 of 1,50% stops batch 3, whose hosts are skipped and untouched', async () => {
    const file = sharedFile('batches')
    const ports = sshd.ports.slice(0, 5) // batches of 1, 3, 1
    const bad = ports[2]
    const run = await runAction({ ...base(ports), batch: '1,50%', run: `${mark(file, 'ran')}\n[ "${PORT}" != ${bad} ]` })
    expect(run.code).toBe(1)
    expect(run.results.map((r) => r.status)).toEqual(['success', 'success', 'failed', 'success', 'skipped'])
    expect(hostResult(run, name(ports[4]))).toMatchObject({
      skipCode: 'not-started',
      error: `not started: the rollout stopped in batch 2/3 when ${name(bad)} failed: more than 0 hosts failed (max-failures)`
    })
    expect(
      events(file)
        .map((x) => x.port)
        .sort()
    ).toEqual(ports.slice(0, 4).sort())
    expect(run.summary).toContain('### Stopped by max-failures')
    expect(run.annotations.find((a) => a.startsWith('::notice'))).toMatch(/3\/5 hosts succeeded in [\d.]+s \(1 failed, 1 skipped\)/)
  })

  test('max-failures lets a batch through with one failure', async () => {
    const ports = sshd.ports.slice(0, 4)
    const run = await runAction({ ...base(ports), batch: '2', 'max-failures': '1', run: `[ "${PORT}" != ${ports[0]} ]` })
    expect(run.results.map((r) => r.status)).toEqual(['failed', 'success', 'success', 'success'])
  })
})

describe('shards', () => {
  test('shards of one fleet are disjoint and cover it', async () => {
    const file = sharedFile('shards')
    for (const k of [1, 2, 3]) {
      const run = await runAction({ ...base(), shard: `${k}/3`, run: mark(file, `shard${k}`) })
      expect(run.code).toBe(0)
      expect(run.results).toHaveLength(2)
    }
    const e = events(file)
    expect(e.map((x) => x.port).sort()).toEqual([...sshd.ports].sort())
    expect(new Set(e.map((x) => x.port)).size).toBe(6)
  })
})

describe('dry-run', () => {
  test('validates and prints the plan against closed ports, connects to nothing, exits 0', async () => {
    let connections = 0
    const server = createServer((s) => {
      connections++
      s.destroy()
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const closed = await freePorts(3)
    const listening = (server.address() as { port: number }).port
    try {
      const hosts = [...closed, listening].map((p) => `deploy@127.0.0.1:${p}`).join('\n')
      const run = await runAction({
        hosts,
        'private-key': sshd.clientKey,
        'dry-run': 'true',
        batch: '1,100%',
        steps: '- name: Pull\n  run: docker pull x\n  timeout: 5m\n- name: Migrate\n  run: ./migrate\n  run-once: true'
      })
      expect(run.code).toBe(0)
      expect(connections).toBe(0)
      expect(run.stdout).toContain('ssh-fleet: 4 hosts in 2 batches, strategy host, concurrency 10, max-failures 0')
      expect(run.stdout).toContain(`batch 1 (1 host): deploy@127.0.0.1:${closed[0]}`)
      expect(run.stdout).toContain('step 1: Pull (timeout 300s): docker pull x')
      expect(run.stdout).toContain('step 2: Migrate (run-once): ./migrate')
      expect(run.stdout).toContain('dry-run: nothing was connected to.')
      expect(run.results.every((r) => r.status === 'skipped')).toBe(true)
      expect(run.summary).toContain('dry run')
    } finally {
      server.close()
    }
  })

  test('dry-run still refuses bad input', async () => {
    const run = await runAction({ ...base(), 'dry-run': 'true', steps: '- run: x\n  timeout: forever' })
    expect(run.code).toBe(1)
    expect(run.stdout).toContain("::error::Invalid input 'steps': step 1, field 'timeout': 'forever' is not a duration")
  })
})

describe('per-step options', () => {
  test('continue-on-error, env, timeout and retries per step', async () => {
    const counter = sharedFile('retry')
    writeFileSync(counter, '0')
    const steps = `
- name: Soft
  run: echo "soft fail" >&2; exit 9
  continue-on-error: true
- name: Env
  env:
    STAGE: blue
  run: echo "stage=$STAGE global=$GLOBAL"
- name: Flaky
  retries: 2
  retry-delay: 0.1s
  run: n=$(($(cat ${counter}) + 1)); echo $n > ${counter}; [ $n -ge 2 ]
- name: Slow
  timeout: 1s
  run: sleep 30
- name: Never
  run: echo unreachable
`
    const run = await runAction({ ...base([sshd.ports[0]]), env: 'GLOBAL=g', steps })
    const r = hostResult(run, name(sshd.ports[0]))
    expect(r).toMatchObject({ status: 'failed', error: 'timed out after 1s; the remote process was stopped' })
    expect(r.steps.map((s: { name: string; status: string; attempts: number }) => [s.name, s.status, s.attempts])).toEqual([
      ['Soft', 'failed', 1],
      ['Env', 'success', 1],
      ['Flaky', 'success', 2],
      ['Slow', 'failed', 1]
    ])
    expect(r.steps[0]).toMatchObject({ exitCode: 9, stderrTail: 'soft fail' })
    expect(r.steps[1].stdoutTail).toBe('stage=blue global=g')
    expect(run.annotations.some((a) => a.startsWith('::error title=') && a.includes('%3A Slow::timed out'))).toBe(true)
    expect(
      run.annotations.some(
        (a) => a.startsWith('::warning') && a.includes("step 'Soft' failed and was let through (continue-on-error): exit code 9")
      )
    ).toBe(true)
  })

  test('a continue-on-error failure does not fail the action', async () => {
    const run = await runAction({ ...base([sshd.ports[0]]), steps: '- run: exit 3\n  continue-on-error: true\n- run: echo after' })
    expect(run.code).toBe(0)
    expect(hostResult(run, name(sshd.ports[0]))).toMatchObject({ status: 'success' })
  })
})

describe.runIf(isRoot)('jump host (network namespace; needs root)', () => {
  test('hosts reachable only through the bastion are reached via proxy-jump, many at once', async () => {
    const ns = createNetns()
    // One sshd inside the namespace: the bastion on the veth address, 8 "hosts" on the namespace's own loopback.
    const inside = Array.from({ length: 8 }, (_, i) => `127.0.0.1:${2201 + i}`)
    const behind = await startSshd({ netns: ns.name, listen: [`${ns.inner}:22`, ...inside] }).catch((err) => {
      ns.remove()
      throw err
    })
    try {
      const key = behind.knownHosts.split('\n')[0].split(' ').slice(1).join(' ')
      const knownHosts = [`${ns.inner} ${key}`, ...inside.map((a) => `[127.0.0.1]:${a.split(':')[1]} ${key}`)].join('\n')
      const hosts = inside.map((a) => `${behind.user}@${a}`).join('\n')
      const common = {
        hosts,
        'private-key': behind.clientKey,
        'known-hosts': knownHosts,
        run: 'echo "inside $(cat /proc/sys/kernel/hostname) via ${SSH_CONNECTION%% *}"',
        'connect-retries': '1'
      }
      // Without the bastion these addresses lead nowhere (this namespace's loopback has no such sshd).
      const direct = await runAction({ ...common, 'connect-timeout': '3s' })
      expect(direct.results.every((r) => r.status === 'unreachable')).toBe(true)
      const via = await runAction({ ...common, 'proxy-jump': `${behind.user}@${ns.inner}`, concurrency: '8' })
      expect(via.code).toBe(0)
      expect(via.results.map((r) => r.status)).toEqual(Array(8).fill('success'))
      // sshd inside saw the connections come from its own loopback: the bastion's direct-tcpip.
      for (const r of via.results) expect(r.steps[0].stdoutTail).toMatch(/via 127\.0\.0\.1$/)
      expect(via.stdout).toContain(`route: runner → ${behind.user}@${ns.inner} → ${hosts.split('\n')[0]}`)
      // The hop's trust is in the log too, once: the bastion connection is shared.
      expect(
        via.stdout.split(
          `bastion ${behind.user}@${ns.inner}: connected; host key ${behind.hostKeyType} ${behind.fingerprint} accepted by known-hosts line 1`
        )
      ).toHaveLength(2)
    } finally {
      await behind.stop()
      ns.remove()
    }
  })

  test('the bastion host key is checked like any host', async () => {
    const ns = createNetns()
    const behind = await startSshd({ netns: ns.name, listen: [`${ns.inner}:22`, '127.0.0.1:2201'] })
    try {
      const key = behind.knownHosts.split('\n')[0].split(' ').slice(1).join(' ')
      const run = await runAction({
        hosts: `${behind.user}@127.0.0.1:2201`,
        'private-key': behind.clientKey,
        'known-hosts': `[127.0.0.1]:2201 ${key}`,
        'proxy-jump': `${behind.user}@${ns.inner}`,
        run: 'true'
      })
      expect(run.results[0].status).toBe('failed')
      expect(run.results[0].error).toMatch(
        new RegExp(`bastion ${behind.user}@${ns.inner.replace(/\./g, '\\.')}: host key refused: .* is not known`)
      )
    } finally {
      await behind.stop()
      ns.remove()
    }
  })
})
