/**
 * The reboot step against hosts that really reboot: a real sshd in PID and mount namespaces of its
 * own (test/helpers/rebootable.ts). Needs root (unshare, mount); CI runs as root.
 */
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { hostResult, runAction } from '../helpers/action'
import { startRebootableHost, type RebootableHost } from '../helpers/rebootable'
import { hostList, isRoot, startSshd, type Sshd } from '../helpers/sshd'

const inputs = (hosts: RebootableHost[], extra: Record<string, string>): Record<string, string> => ({
  hosts: hosts.map((h) => h.name).join('\n'),
  'private-key': hosts[0].sshd.clientKey,
  'known-hosts': hosts.map((h) => h.knownHosts).join('\n'),
  ...extra
})
const name = (h: RebootableHost): string => h.name

/** Each rebootable host has its own client key; authorise the first host's key on all of them. */
async function fleet(count: number, options: Parameters<typeof startRebootableHost>[0] = {}): Promise<RebootableHost[]> {
  const hosts = await Promise.all(Array.from({ length: count }, () => startRebootableHost(options)))
  const { appendFileSync, readFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const key = readFileSync(join(hosts[0].sshd.dir, 'client.pub'))
  for (const h of hosts.slice(1)) appendFileSync(join(h.sshd.dir, 'authorized_keys'), key)
  return hosts
}

describe.runIf(isRoot)('reboot step (real sshd in its own PID and mount namespaces)', () => {
  let hosts: RebootableHost[] = []
  afterAll(async () => {
    await Promise.all(hosts.map((h) => h.stop()))
  })

  test('happy path: the host answers with the old boot id for a while, goes down, comes back; later steps see the new boot id', async () => {
    hosts = await fleet(1, { lingerMs: 2500, downMs: 2000 })
    const [host] = hosts
    const oldId = host.bootId()
    const steps = `
- name: Before
  run: cat /proc/sys/kernel/random/boot_id
- reboot: true
- name: After
  run: echo "$(cat /proc/sys/kernel/random/boot_id) $(date +%s%3N)"
`
    const run = await runAction(inputs(hosts, { steps }))
    const r = hostResult(run, name(host))
    expect(r.status).toBe('success')
    expect(r.steps.map((s: { name: string; status: string }) => s.status)).toEqual(['success', 'success', 'success'])
    expect(r.steps[0].stdoutTail).toBe(oldId)
    const [newId, stamp] = r.steps[2].stdoutTail.split(' ')
    expect(newId).toBe(host.bootId())
    expect(newId).not.toBe(oldId)
    // The default command for a user other than root went through sudo -n.
    expect(r.steps[1].stdoutTail).toBe('sudo: running shutdown -r now\nThe system will reboot now (/usr/local/bin/shutdown -r now)')
    expect(run.stdout).toContain('still up with the old boot id')
    const reboot = r.steps[1]
    const [h] = host.history
    expect(reboot.downtimeMs).toBeGreaterThanOrEqual(1500)
    expect(reboot.rebootMs).toBeGreaterThan(reboot.downtimeMs)
    // Noticed within about a second of accepting logins (the next step's first command is the bound).
    const noticedAfterMs = Number(stamp) - (h.upAt as number)
    console.log(
      `reboot: sshd listening again → next step running: ${noticedAfterMs} ms; downtime ${reboot.downtimeMs} ms; total ${reboot.rebootMs} ms`
    )
    expect(noticedAfterMs).toBeLessThan(2500)
    expect(run.summary).toMatch(/\| \d+\.\ds \|$/m) // the Reboot downtime column
    expect(run.stdout).toMatch(/back with boot id [0-9a-f-]+: down \d+\.\ds, reboot took \d+\.\ds/)
  })

  test("a host whose key is its ssh-config IdentityFile comes back: the polls use the host's own settings", async () => {
    const [host] = await fleet(1, { lingerMs: 500, downMs: 1000 })
    hosts.push(host)
    const config = [
      'Host app',
      '  HostName 127.0.0.1',
      `  Port ${host.port}`,
      `  User ${host.sshd.user}`,
      `  IdentityFile ${join(host.sshd.dir, 'client')}`
    ]
    const run = await runAction({
      hosts: 'app',
      'ssh-config': config.join('\n'),
      'known-hosts': host.sshd.knownHosts,
      steps: '- reboot:\n    timeout: 20s\n- run: cat /proc/sys/kernel/random/boot_id'
    })
    const r = hostResult(run, 'app')
    expect(r.status, r.error).toBe('success')
    expect(r.steps[1].stdoutTail).toBe(host.bootId())
    expect(host.history).toHaveLength(1)
  })

  test('a reboot command that drains for more than 30 s is bounded by the step timeout, not a hidden limit', async () => {
    const [host] = await fleet(1, { lingerMs: 500, downMs: 1000 })
    hosts.push(host)
    const run = await runAction(inputs([host], { steps: "- reboot:\n    command: 'sleep 33; sudo -n shutdown -r now'\n    timeout: 90s" }))
    const r = hostResult(run, name(host))
    expect(r.status, r.error).toBe('success')
    expect(r.steps[0].rebootMs).toBeGreaterThan(33_000)
    expect(host.history).toHaveLength(1)
  }, 100_000)

  test('a host whose network drops before its session closes (reboot -f, an IPMI reset): the silence is it going down, and it comes back', async () => {
    // The link goes down as the command starts; sshd dies 1 s later, unheard; the link and sshd are back
    // 14 s after, when the silence has been noticed (about 12 s) and the polls find nothing.
    const [host] = await fleet(1, { networkDrops: true, lingerMs: 1000, downMs: 14_000 })
    hosts.push(host)
    const oldId = host.bootId()
    // 25 s: less than keepalive-interval's own watch takes (15 s × 3), which the reboot must not wait for.
    const steps = "- reboot:\n    command: 'sudo -n reboot -f'\n    timeout: 25s\n- run: cat /proc/sys/kernel/random/boot_id"
    const run = await runAction(inputs([host], { steps }))
    const r = hostResult(run, name(host))
    // Before: the command was waited on until the step's deadline on a connection that no longer
    // answered, then "did not come back within 25.0s".
    expect(r.status, r.error).toBe('success')
    expect(r.steps[1].stdoutTail).toBe(host.bootId())
    expect(host.bootId()).not.toBe(oldId)
    expect(host.history).toHaveLength(1)
    expect(run.stdout).toContain('going down (connection lost during the step: host stopped answering keepalives')
    // Down from when it went silent (within the watch's 2 s), not from when the silence was noticed (~12 s later).
    expect(r.steps[0].downtimeMs).toBeGreaterThanOrEqual(12_000)
  }, 60_000)

  test('the reboot command failing with the connection up fails at once, with its stderr', async () => {
    const failing = await fleet(1, { sudoNeedsPassword: true })
    hosts.push(...failing)
    const run = await runAction(inputs(failing, { steps: '- reboot:\n    timeout: 2m\n- run: echo never' }))
    const r = hostResult(run, name(failing[0]))
    expect(r.status).toBe('failed')
    expect(r.error).toMatch(/^the reboot command failed with the connection still up \(exit code 1\)/)
    expect(r.steps[0].stderrTail).toBe('sudo: a password is required')
    expect(r.steps).toHaveLength(1)
    expect(run.durationMs).toBeLessThan(10_000)
    expect(failing[0].history).toHaveLength(0)
  })

  test('a host that never comes back fails at the deadline, saying what the last attempt saw', async () => {
    const gone = await fleet(1, { neverReturn: true, lingerMs: 500 })
    hosts.push(...gone)
    const run = await runAction(inputs(gone, { steps: '- reboot:\n    timeout: 6s' }))
    const r = hostResult(run, name(gone[0]))
    expect(r.status).toBe('failed')
    expect(r.error).toMatch(/^did not come back within 6\.0s; last attempt: connection refused/)
    expect(r.steps[0].durationMs).toBeGreaterThanOrEqual(6000)
    expect(r.steps[0].durationMs).toBeLessThan(9000)
  })

  test('several hosts rebooting at once, in step strategy, beside a run on hosts that do not reboot', async () => {
    const rebooting = await fleet(3, { lingerMs: 1000, downMs: 1500 })
    hosts.push(...rebooting)
    const steady: Sshd = await startSshd({ ports: 2 })
    try {
      const steps = '- run: cat /proc/sys/kernel/random/boot_id\n- reboot: true\n- run: cat /proc/sys/kernel/random/boot_id'
      const [rebootRun, steadyRun] = await Promise.all([
        runAction(inputs(rebooting, { steps, strategy: 'step', concurrency: '3' })),
        runAction({
          hosts: hostList(steady),
          'private-key': steady.clientKey,
          'known-hosts': steady.knownHosts,
          run: 'sleep 4; echo steady'
        })
      ])
      expect(steadyRun.results.map((r) => r.status)).toEqual(['success', 'success'])
      for (const host of rebooting) {
        const r = hostResult(rebootRun, name(host))
        expect(r.status).toBe('success')
        expect(r.steps[2].stdoutTail).toBe(host.bootId())
        expect(r.steps[0].stdoutTail).not.toBe(host.bootId())
        expect(host.history).toHaveLength(1)
      }
      // They were down at the same time.
      const downs = rebooting.map((h) => h.history[0])
      expect(Math.max(...downs.map((d) => d.downAt as number))).toBeLessThan(Math.min(...downs.map((d) => d.upAt as number)))
    } finally {
      await steady.stop()
    }
  })
})
