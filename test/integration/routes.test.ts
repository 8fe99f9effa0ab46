/**
 * Reaching hosts the way people already reach them, against real sshd: a proxy command (a netcat
 * of Node's running inside a network namespace, and the OpenSSH client's `ssh -W`), a two-hop
 * proxy-jump chain whose second bastion lives in a namespace, and an ssh config with aliases,
 * patterns, ProxyJump and IdentityFile. The hosts listen on the namespace's own loopback, which
 * nothing outside can reach: only the route can.
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runAction } from '../helpers/action'
import { createNetns, type Netns } from '../helpers/netns'
import { freePorts, hostName, isRoot, startSshd, type Sshd } from '../helpers/sshd'

/** A netcat in Node: stdin to a TCP connection to host:port, and back to stdout. */
const NODE_NC = `${process.execPath} -e 'const s = require("net").connect(+process.argv[2], process.argv[1]); process.stdin.pipe(s); s.pipe(process.stdout); s.on("error", (e) => { console.error(e.message); process.exit(1) }); s.on("close", () => process.exit(0))'`

describe.runIf(isRoot)('routes (network namespaces; needs root)', () => {
  let ns: Netns
  let inside: Sshd // the bastion on the veth address, and two hosts on the namespace's loopback
  let outside: Sshd // a first hop on this machine's loopback
  const dir = mkdtempSync(join(tmpdir(), 'ssh-fleet-routes-'))
  const targets = ['127.0.0.1:2201', '127.0.0.1:2202']
  beforeAll(async () => {
    ns = createNetns()
    inside = await startSshd({ netns: ns.name, listen: [`${ns.inner}:22`, ...targets] })
    outside = await startSshd({ ports: 1, prepare: (d) => writeFileSync(join(d, 'authorized_keys'), '') })
    // One key for all: the outside hop authorises the inside fixture's client key too.
    writeFileSync(
      join(outside.dir, 'authorized_keys'),
      `${execFileSync('ssh-keygen', ['-y', '-f', join(inside.dir, 'client')], { encoding: 'utf8' })}`
    )
    writeFileSync(join(dir, 'key'), inside.clientKey, { mode: 0o600 })
    chmodSync(join(dir, 'key'), 0o600)
  })
  afterAll(async () => {
    await inside?.stop()
    await outside?.stop()
    ns?.remove()
    rmSync(dir, { recursive: true, force: true })
  })
  const insideKey = (): string => inside.knownHosts.split('\n')[0].split(' ').slice(1).join(' ')
  const knownTargets = (): string => targets.map((t) => `[127.0.0.1]:${t.split(':')[1]} ${insideKey()}`).join('\n')
  const hosts = (): string => targets.map((t) => `${inside.user}@${t}`).join('\n')

  test('a proxy command (a netcat run inside the namespace) reaches hosts nothing else can', async () => {
    const run = await runAction({
      hosts: hosts(),
      'private-key': inside.clientKey,
      'known-hosts': knownTargets(),
      'proxy-command': `ip netns exec ${ns.name} ${NODE_NC} %h %p`,
      run: 'echo "on ${SSH_CONNECTION##* }"'
    })
    expect(run.code, run.stdout).toBe(0)
    expect(run.results.map((r) => r.steps[0].stdoutTail)).toEqual(['on 2201', 'on 2202'])
  })

  test('a proxy command through the OpenSSH client: ssh -W %h:%p via the bastion', async () => {
    writeFileSync(join(dir, 'bastion_known'), `${ns.inner} ${insideKey()}\n`)
    const ssh = `ssh -i ${join(dir, 'key')} -o UserKnownHostsFile=${join(dir, 'bastion_known')} -o StrictHostKeyChecking=yes -o BatchMode=yes -W %h:%p ${inside.user}@${ns.inner}`
    const run = await runAction({
      hosts: hosts(),
      'private-key': inside.clientKey,
      'known-hosts': knownTargets(),
      'proxy-command': ssh,
      run: 'echo through ssh'
    })
    expect(run.code, run.stdout).toBe(0)
    expect(run.results.every((r) => r.steps[0].stdoutTail === 'through ssh')).toBe(true)
  })

  test('a proxy command that exits at once: its exit code and last stderr line, retried as transient', async () => {
    const run = await runAction({
      hosts: `${inside.user}@${targets[0]}`,
      'private-key': inside.clientKey,
      'known-hosts': knownTargets(),
      'proxy-command': 'echo tunnel: no route to %h >&2; exit 3',
      'connect-retries': '1',
      run: 'true'
    })
    expect(run.results[0]).toMatchObject({ status: 'unreachable', attempts: 2 })
    expect(run.results[0].error).toBe('proxy command exited with code 3: tunnel: no route to 127.0.0.1')
    expect(run.stdout).toContain('» proxy command: tunnel: no route to 127.0.0.1')
  })

  test("a two-hop chain: this machine's bastion, then one inside the namespace; each hop's trust logged", async () => {
    const first = hostName(outside, outside.ports[0])
    const second = `${inside.user}@${ns.inner}`
    const run = await runAction({
      hosts: hosts(),
      'private-key': inside.clientKey,
      'known-hosts': [knownTargets(), outside.knownHosts, `${ns.inner} ${insideKey()}`].join('\n'),
      'proxy-jump': `${first},${second}`,
      concurrency: '2',
      run: 'echo "via ${SSH_CONNECTION%% *}"'
    })
    expect(run.code, run.stdout).toBe(0)
    expect(run.results.map((r) => r.steps[0].stdoutTail)).toEqual(['via 127.0.0.1', 'via 127.0.0.1'])
    // One connection per hop, shared by both hosts.
    expect(run.stdout.split(`hop 1 of 2 (${first}): connected; host key`)).toHaveLength(2)
    expect(run.stdout.split(`hop 2 of 2 (${second}): connected; host key`)).toHaveLength(2)
    expect(run.stdout).toContain(`route: runner → ${first} → ${second} → ${inside.user}@${targets[0]}`)
  })

  test('an unknown key at hop 2 is refused, and the message names the hop', async () => {
    const first = hostName(outside, outside.ports[0])
    const second = `${inside.user}@${ns.inner}`
    const run = await runAction({
      hosts: `${inside.user}@${targets[0]}`,
      'private-key': inside.clientKey,
      'known-hosts': [knownTargets(), outside.knownHosts].join('\n'),
      'proxy-jump': `${first},${second}`,
      run: 'true'
    })
    expect(run.results[0].status).toBe('failed')
    expect(run.results[0].error).toMatch(new RegExp(`^hop 2 of 2 \\(${second.replace(/\./g, '\\.')}\\): host key refused: .* is not known`))
  })

  test('an unknown key at hop 1 is named once, as hop 1: the hops after it add nothing', async () => {
    const first = hostName(outside, outside.ports[0])
    const second = `${inside.user}@${ns.inner}`
    const run = await runAction({
      hosts: `${inside.user}@${targets[0]}`,
      'private-key': inside.clientKey,
      'known-hosts': [knownTargets(), `${ns.inner} ${insideKey()}`].join('\n'),
      'proxy-jump': `${first},${second}`,
      run: 'true'
    })
    expect(run.results[0].status).toBe('failed')
    expect(run.results[0].error).toMatch(new RegExp(`^hop 1 of 2 \\(${first.replace(/\./g, '\\.')}\\): host key refused: .* is not known`))
    expect(run.results[0].error).not.toContain('hop 2 of 2')
  })

  test('an ssh config: aliases, Host patterns, ProxyJump and IdentityFile; unsupported keywords named', async () => {
    const config = [
      'Host web-1',
      '  Port 2201',
      'Host web-2',
      '  Port 2202',
      'Host web-* !web-9',
      '  HostName 127.0.0.1',
      `  User ${inside.user}`,
      '  ProxyJump jumpbox',
      `  IdentityFile ${join(dir, 'key')}`,
      '  StrictHostKeyChecking no',
      'Host jumpbox',
      `  HostName ${ns.inner}`,
      `  User ${inside.user}`,
      `  IdentityFile ${join(dir, 'key')}`
    ].join('\n')
    const run = await runAction({
      hosts: 'web-1 web-2',
      'ssh-config': config,
      'known-hosts': [knownTargets(), `${ns.inner} ${insideKey()}`].join('\n'),
      run: 'echo "alias on ${SSH_CONNECTION##* }"'
    })
    expect(run.code, run.stdout).toBe(0)
    expect(run.results.map((r) => [r.host, r.steps[0].stdoutTail])).toEqual([
      ['web-1', 'alias on 2201'],
      ['web-2', 'alias on 2202']
    ])
    expect(run.stdout).toContain(`route: runner → jumpbox → web-1`)
    expect(
      run.annotations.some(
        (a) => a.startsWith('::warning') && a.includes('ssh-config: StrictHostKeyChecking is not supported by ssh-fleet and was ignored')
      )
    ).toBe(true)
  })
})

describe('legacy algorithms on a route', () => {
  test('a bastion that settled on legacy algorithms is named in the warning, with them', async () => {
    // The bastion speaks only CBC and hmac-sha1; the host behind it is a modern sshd.
    const bastion = await startSshd({ ports: 1, config: ['Ciphers aes128-cbc', 'MACs hmac-sha1'] })
    const target = await startSshd({ ports: 1 })
    try {
      writeFileSync(
        join(bastion.dir, 'authorized_keys'),
        execFileSync('ssh-keygen', ['-y', '-f', join(target.dir, 'client')], { encoding: 'utf8' })
      )
      const run = await runAction({
        hosts: hostName(target, target.ports[0]),
        'proxy-jump': hostName(bastion, bastion.ports[0]),
        'private-key': target.clientKey,
        'known-hosts': `${bastion.knownHosts}\n${target.knownHosts}`,
        'legacy-algorithms': 'true',
        run: 'echo behind'
      })
      expect(run.results[0].status, run.stdout).toBe('success')
      const warning = run.annotations.find((a) => a.startsWith('::warning'))
      expect(warning).toContain(
        `bastion ${hostName(bastion, bastion.ports[0])} connected with legacy algorithms (legacy-algorithms: true): aes128-cbc, hmac-sha1`
      )
      // The host's own handshake used none.
      expect(warning).not.toMatch(/(^|%0A|::)connected with legacy algorithms/)
    } finally {
      await bastion.stop()
      await target.stop()
    }
  })
})

describe('where a connection went', () => {
  test('a refused connection names the address an ssh-config alias resolved to', async () => {
    const [port] = await freePorts(1) // nothing listens there
    const run = await runAction({
      hosts: 'app',
      'ssh-config': ['Host app', '  HostName 127.0.0.1', `  Port ${port}`, '  User deploy'].join('\n'),
      password: 'not-used',
      'connect-retries': '0',
      run: 'true'
    })
    expect(run.results[0]).toMatchObject({
      host: 'app',
      status: 'unreachable',
      error: `connection refused (ECONNREFUSED) to 127.0.0.1:${port}: is sshd listening on that port?`
    })
  })
})
