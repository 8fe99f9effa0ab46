/**
 * OpenSSH 10 (Debian 13's sshd, test/helpers/openssh10.ts) from one runner address: PerSourcePenalties
 * (on by default since 9.8) turns the address away after failed logins or connections left before
 * login, `RefuseConnection` refuses after the key exchange, `MaxAuthTries` ends a login. Penalties are
 * shortened in sshd_config where the point is not their default values.
 */
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { runAction, type ActionRun } from '../helpers/action'
import { hasMlKem } from '../../src/ssh/algorithms'
import { canRunOpenssh10, startOpenssh10 } from '../helpers/openssh10'
import { hostList, keygen, type Sshd } from '../helpers/sshd'

const inputs = (s: Sshd, extra: Record<string, string> = {}, ports = s.ports): Record<string, string> => ({
  hosts: hostList(s, ports),
  'private-key': s.clientKey,
  'known-hosts': s.knownHosts,
  ...extra
})
const failures = (run: ActionRun): Array<Record<string, any>> => run.results.filter((r) => r.status !== 'success')
/** The pid of the sshd listener (the first of the fixture's sshd processes). */
const listenerPid = (s: Sshd): number => Number(readFileSync(join(s.dir, 'sshd.0.pid'), 'utf8'))
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function withSshd<T>(options: Parameters<typeof startOpenssh10>[0], body: (s: Sshd) => Promise<T>): Promise<T> {
  const s = await startOpenssh10(options)
  try {
    return await body(s)
  } finally {
    // A stopped listener cannot be killed cleanly; continue it first.
    try {
      process.kill(listenerPid(s), 'SIGCONT')
    } catch {
      // already gone
    }
    await s.stop()
  }
}

describe.runIf(canRunOpenssh10)('OpenSSH 10: penalties, refusals, MaxAuthTries', () => {
  test('a penalised address: the drop is named with the server text and both causes, and the address is paused until the penalty ends', async () => {
    // 20 s: longer than the connect retries last (4 retries, full jitter, 1 s base: 15 s at most).
    await withSshd({ config: ['PerSourcePenalties authfail:20s min:15s'] }, async (s) => {
      const wrong = keygen(join(s.dir, 'wrong'))
      const refused = await runAction(inputs(s, { 'private-key': wrong, run: 'true' }))
      expect(refused.results[0].error).toMatch(/^authentication failed/)
      // The listener logs the penalty when the session's process ends, which may be just after the action did.
      const penalised = /srclimit_penalise: ipv4: new 127\.0\.0\.1\/32 active penalty of 20 seconds/
      for (let i = 0; i < 50 && !penalised.test(s.log()); i++) await sleep(100)
      expect(s.log()).toMatch(penalised)
      const run = await runAction(inputs(s, { run: 'echo in' }))
      expect(failures(run)).toEqual([])
      expect(run.stdout).toMatch(
        /127\.0\.0\.1 turns away even a lone connection \(the server turned the connection away before its SSH banner to 127\.0\.0\.1:\d+, saying "Not allowed at this time": sshd MaxStartups or PerSourcePenalties \(OpenSSH ≥ 9\.8\) refuses new connections from this runner's address; on the server, add the runner's address to PerSourcePenaltyExemptList/
      )
      expect(run.stdout).toMatch(/no new connection to it for 5\.0s, then one to probe/)
      // The waits were the address's, not the host's retries: one attempt, its probes after each pause
      // not counted. sshd closes with our banner unread, so its refusal reads as a reset or an end by
      // timing alone: before the fix a reset was taken for a silent drop (MaxStartups), a spent retry
      // (2 attempts on Node 20, 5 on Node 24 in CI; before the pauses: unreachable after 5 in 11 s).
      expect(run.results[0].attempts).toBe(1)
      expect(run.stdout).not.toContain('connection reset during handshake')
    })
  })

  test('two names of one penalised address share its pause: one gate for what the server sees, not one per name', async () => {
    await withSshd({ config: ['PerSourcePenalties authfail:10s min:5s'] }, async (s) => {
      const port = s.ports[0]
      const wrong = keygen(join(s.dir, 'wrong'))
      await runAction(inputs(s, { 'private-key': wrong, run: 'true' }))
      const penalised = /srclimit_penalise: ipv4: new 127\.0\.0\.1\/32 active penalty of 10 seconds/
      for (let i = 0; i < 50 && !penalised.test(s.log()); i++) await sleep(100)
      expect(s.log()).toMatch(penalised)
      // 127.1 is 127.0.0.1 spelled another way (the resolver reads it so): another name, the same server.
      const run = await runAction({
        hosts: `${s.user}@127.0.0.1:${port}\n${s.user}@127.1:${port}`,
        'private-key': s.clientKey,
        'known-hosts': `${s.knownHosts}\n${s.knownHosts.replace('[127.0.0.1]', '[127.1]')}`,
        run: 'echo in'
      })
      expect(run.results.map((r) => [r.status, r.attempts])).toEqual([
        ['success', 1],
        ['success', 1]
      ])
      // Paused once for both, under the address they resolve to; before: each name paused (and probed) on its own.
      expect(run.stdout).toMatch(/^127\.0\.0\.1 turns away even a lone connection/m)
      expect(run.stdout).not.toMatch(/^127\.1 turns away/m)
    })
  })

  test('sshd stalled 12 s (TCP accepted, no banner) under 16 hosts: connections left before login do not lock the runner out', async () => {
    await withSshd({ ports: 16 }, async (s) => {
      const pid = listenerPid(s)
      process.kill(pid, 'SIGSTOP')
      const resumed = sleep(12_000).then(() => process.kill(pid, 'SIGCONT'))
      const run = await runAction(inputs(s, { run: 'echo in', concurrency: '16', 'connect-timeout': '4s' }))
      await resumed
      expect(failures(run).map((r) => r.error)).toEqual([])
      // Each connection left before login cost a second of penalty; fewer than sshd's 15 s threshold were left.
      expect(s.log()).not.toMatch(/active penalty/)
    })
  })

  test('RefuseConnection yes: a refusal after the key exchange, named as such, not retried, and failed (the host answered)', async () => {
    await withSshd({ config: ['RefuseConnection yes'] }, async (s) => {
      const run = await runAction(inputs(s, { run: 'true' }))
      expect(run.results[0]).toMatchObject({
        // Reached, and it said no, as for a refused key or login: not unreachable.
        status: 'failed',
        attempts: 1,
        error: expect.stringMatching(
          /the server closed the connection to 127\.0\.0\.1:\d+ after the key exchange, before login: it refuses this client \(e\.g\. OpenSSH RefuseConnection, a Match block\)/
        )
      })
    })
  })

  test("MaxAuthTries exceeded by an agent's keys: named, with the keys offered, not retried", async () => {
    await withSshd({ config: ['MaxAuthTries 2'] }, async (s) => {
      const dir = mkdtempSync(join(tmpdir(), 'ssh-fleet-agent-'))
      const sock = join(dir, 'agent.sock')
      const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' })
      try {
        for (let i = 0; i < 50 && !existsSync(sock); i++) await sleep(20)
        const fingerprints = ['a', 'b', 'c'].map((k) => {
          keygen(join(dir, k))
          execFileSync('ssh-add', [join(dir, k)], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' })
          return execFileSync('ssh-keygen', ['-lf', `${join(dir, k)}.pub`], { encoding: 'utf8' }).split(' ')[1]
        })
        // No private-key: the agent's keys are all that is offered.
        const run = await runAction(inputs(s, { run: 'true', 'private-key': '' }), { env: { SSH_AUTH_SOCK: sock } })
        const r = run.results[0]
        expect(r).toMatchObject({ status: 'failed', attempts: 1 })
        expect(r.error).toMatch(
          /^authentication failed: the server ended it after 2 offers \(reason 2: Too many authentication failures\), as sshd does when MaxAuthTries/
        )
        expect(r.error).toContain(`publickey ssh-ed25519 ${fingerprints[0]}, ssh-ed25519 ${fingerprints[1]})`)
        expect(r.error).not.toContain(fingerprints[2])
      } finally {
        agent.kill()
        rmSync(dir, { recursive: true, force: true })
      }
    })
  })

  test('a reboot whose port accepts long before sshd answers: one connection waits for the banner, none is left to be penalised', async () => {
    // A connection left before login costs 10 s here (1 s by default), so two of them pass the 15 s threshold.
    await withSshd({ config: ['PerSourcePenalties noauth:10s min:15s'] }, async (s) => {
      const bootId = join(s.shared, 'boot_id')
      const request = join(s.shared, 'reboot-requested')
      writeFileSync(bootId, 'old\n', { mode: 0o644 })
      const pid = listenerPid(s)
      // The "reboot": the listener stops answering (the kernel still accepts) for 12 s, with a new boot id.
      let rebooted: Promise<void> | undefined
      const watcher = setInterval(() => {
        if (rebooted || !existsSync(request)) return
        process.kill(pid, 'SIGSTOP')
        writeFileSync(bootId, 'new\n')
        rebooted = sleep(12_000).then(() => void process.kill(pid, 'SIGCONT'))
      }, 20)
      try {
        const steps = `
- name: Reboot
  reboot:
    command: touch ${request}
    boot-id-command: cat ${bootId}
    timeout: 40s
- name: After
  run: cat ${bootId}
`
        const run = await runAction(inputs(s, { steps }))
        await rebooted
        expect(failures(run).map((r) => r.error)).toEqual([])
        expect(run.results[0].steps[1].stdoutTail).toBe('new')
        // A connection left before login may still add a deferred penalty below the threshold; none becomes active.
        expect(s.log()).not.toMatch(/srclimit_penalise: .* active penalty/)
        // A new login right after is not turned away.
        const after = await runAction(inputs(s, { run: 'true' }))
        expect(after.results[0]).toMatchObject({ status: 'success', attempts: 1 })
        expect(after.stdout).not.toContain('turns away')
      } finally {
        clearInterval(watcher)
        for (const f of readdirSync(s.shared)) rmSync(join(s.shared, f), { force: true })
      }
    })
  })
})

describe.runIf(canRunOpenssh10)('OpenSSH 10: post-quantum key exchange', () => {
  test(`mlkem768x25519-sha256 where the runtime has ML-KEM, curve25519 otherwise, named in the log (${process.version}: ${hasMlKem ? 'has' : 'no'} ML-KEM)`, async () => {
    await withSshd({ config: ['LogLevel DEBUG1'] }, async (s) => {
      const run = await runAction(inputs(s, { run: 'true' }))
      expect(failures(run)).toEqual([])
      if (hasMlKem) {
        expect(s.log()).toMatch(/kex: algorithm: mlkem768x25519-sha256/)
        expect(run.stdout).not.toMatch(/not post-quantum/)
      } else {
        expect(s.log()).toMatch(/kex: algorithm: curve25519-sha256@libssh\.org/)
        expect(run.stdout).toContain(
          `; key exchange curve25519-sha256@libssh.org (not post-quantum: Node ${process.version} has no ML-KEM, Node ≥ 24.7 has)`
        )
      }
    })
  })
})
