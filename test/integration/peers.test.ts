/**
 * What users of the other SSH actions rely on, against a real sshd through the bundle: remote steps
 * that know where they run (FLEET_*), and a pty for hosts whose sudo wants a terminal.
 */
import { execFileSync } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runAction } from '../helpers/action'
import { useSshd, useWorkspace } from '../helpers/fixtures'
import { ensureTestUser, hostList, hostName, isRoot, type Sshd } from '../helpers/sshd'

/** A user whose sudo wants a terminal (root only): `Defaults:USER requiretty`, NOPASSWD. */
const TTY_USER = 'sfl-requiretty'
const SUDOERS = '/etc/sudoers.d/ssh-fleet-test-requiretty'

let sshd: Sshd
const workspace = useWorkspace('peers')
useSshd({ ports: 2, config: isRoot ? [`AllowUsers ${ensureTestUser()} ${TTY_USER}`] : [] }, (started) => (sshd = started))
const base = (ports = sshd.ports): Record<string, string> => ({
  hosts: hostList(sshd, ports),
  'private-key': sshd.clientKey,
  'known-hosts': sshd.knownHosts
})
const env = { env: { GITHUB_WORKSPACE: workspace } }

describe('where am I: FLEET_* in remote steps', () => {
  test('a remote step sees the same FLEET_HOST, FLEET_HOST_INDEX, FLEET_USER, FLEET_PORT and FLEET_STEP as a local one', async () => {
    const print = 'printf "%s|" "$FLEET_HOST" "$FLEET_HOST_INDEX" "$FLEET_USER" "$FLEET_PORT" "$FLEET_STEP"'
    const steps = `
- name: "Where's $HOME"
  run: '${print}'
  capture: true
- name: Local
  local: '${print}'
  capture: true
- name: Own FLEET_HOST
  run: '${print}'
  env: { FLEET_HOST: overridden }
  capture: true
`
    const run = await runAction({ ...base(), steps }, env)
    expect(run.code, run.stdout).toBe(0)
    const captured = JSON.parse(run.outputs.captured)
    sshd.ports.forEach((port, i) => {
      const where = (step: string): string => `127.0.0.1|${i}|${sshd.user}|${port}|${step}|`
      expect(captured[hostName(sshd, port)]).toEqual({
        "Where's $HOME": where("Where's $HOME"),
        Local: where('Local'),
        'Own FLEET_HOST': where('Own FLEET_HOST')
      })
    })
  })
})

describe.runIf(isRoot)('pty: true (needs root to make a user whose sudo has requiretty)', () => {
  beforeAll(() => {
    try {
      execFileSync('id', [TTY_USER], { stdio: 'ignore' })
    } catch {
      execFileSync('useradd', ['-m', '-s', '/bin/bash', TTY_USER], { stdio: 'ignore' })
    }
    execFileSync('usermod', ['-p', '*', TTY_USER], { stdio: 'ignore' })
    writeFileSync(SUDOERS, `Defaults:${TTY_USER} requiretty, !lecture\n${TTY_USER} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 })
    execFileSync('visudo', ['-cf', SUDOERS], { stdio: 'ignore' })
  })
  afterAll(() => rmSync(SUDOERS, { force: true }))
  const host = (): Record<string, string> => ({ ...base([sshd.ports[0]]), hosts: `${TTY_USER}@127.0.0.1:${sshd.ports[0]}` })

  test("requiretty: sudo fails without a pty (sudo's own message), works with pty: true as an input and as a step field", async () => {
    const without = await runAction({ ...host(), steps: '- run: sudo -n id -u\n- run: id -u\n  sudo: true\n  name: sudo step' })
    expect(without.results[0].status).toBe('failed')
    expect(without.results[0].steps[0].stderrTail).toContain('sudo: sorry, you must have a tty to run sudo')
    const input = await runAction({ ...host(), pty: 'true', timeout: '20s', run: 'sudo -n id -u' })
    expect(input.code, input.stdout).toBe(0)
    expect(input.results[0].steps[0].stdoutTail).toBe('0')
    const field = await runAction({
      ...host(),
      timeout: '20s',
      steps: '- run: id -u\n  sudo: true\n  pty: true\n- run: "[ -t 1 ] || echo no tty"'
    })
    expect(field.code, field.stdout).toBe(0)
    expect(field.results[0].steps.map((s: { stdoutTail: string }) => s.stdoutTail)).toEqual(['0', 'no tty'])
  })

  test('on a pty the script arrives byte for byte (a 5000-byte line, control bytes), stdin stays empty, stderr comes merged into stdout', async () => {
    // Every byte the line discipline would act on in its default mode: ^C ^D ^H ^O ^Q ^S ^U ^V ^W ^Z ^\ DEL, a lone CR, 8-bit bytes.
    const special = '\x01\x03\x04\x08\x0f\x11\x13\x15\x16\x17\x1a\x1c\x7f\r\t é€ \xff'
    const long = 'x'.repeat(5000)
    const script = `cat <<'EOF' | od -An -tx1 | tr -d ' \\n'; echo\n${special}\nEOF\nv='${long}'; echo \${#v}\necho to-stderr >&2\ncat | wc -c\n[ -t 1 ] && echo tty\n`
    const run = await runAction({ ...host(), pty: 'true', timeout: '20s', run: script })
    expect(run.code, run.stdout).toBe(0)
    const hex = Buffer.from(`${special}\n`).toString('hex')
    const step = run.results[0].steps[0]
    expect(step.stdoutTail.split('\n')).toEqual([hex, '5000', 'to-stderr', '0', 'tty'])
    expect(step.stderrTail).toBe('')
  })
})
