/**
 * SSH certificates against real OpenSSH 9.2 (issue 26): host certificates (`HostCertificate`) accepted
 * through a `@cert-authority` line alone, and refused for the reasons OpenSSH refuses them; logins with
 * a user certificate only (`TrustedUserCAKeys`, `AuthorizedPrincipalsFile`, `AuthorizedKeysFile none`),
 * from the input, an agent, or an ssh config; and the same through a bastion. Every certificate is
 * made here with `ssh-keygen -s`, as a CA makes them.
 */
import { execFileSync, spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { hostResult, runAction } from '../helpers/action'
import { CertificateLab, type KeyFiles } from '../helpers/certificates'
import { hostName, startSshd, type Sshd } from '../helpers/sshd'

const lab = new CertificateLab(mkdtempSync(join(tmpdir(), 'ssh-fleet-certificates-')))
chmodSync(lab.dir, 0o755) // the logged-in user's sshd reads the principals files from here
let hostCa: KeyFiles
let userCa: KeyFiles
let user: KeyFiles
const servers: Sshd[] = []

/** `type base64` of a public key, for a known_hosts line. */
const keyOf = (k: KeyFiles): string => k.publicLine.split(' ').slice(0, 2).join(' ')
const fingerprint = (k: KeyFiles): string => execFileSync('ssh-keygen', ['-lf', `${k.path}.pub`], { encoding: 'utf8' }).split(/\s+/)[1]
/** The CA line, without a port: it covers the fixtures' ports through OpenSSH's retry without the port. */
const authority = (ca = hostCa): string => `@cert-authority 127.0.0.1 ${keyOf(ca)}`

/**
 * An sshd whose host key is certified by `hostCa` with `hostCert` (ssh-keygen arguments: principals,
 * validity, -h or not), and that lets users in by certificate only: the user CA's, with a principal
 * listed in `principals` (AuthorizedPrincipalsFile), and no authorized_keys at all.
 */
async function certificateSshd(name: string, hostCert: string[], principals = ['deploy'], hostKeyType?: [string, number]): Promise<Sshd> {
  const certPath = join(lab.dir, `${name}-host-cert.pub`)
  const principalsPath = join(lab.dir, `${name}-principals`)
  writeFileSync(principalsPath, principals.join('\n') + '\n', { mode: 0o644 })
  const certify = (hostKey: KeyFiles): void =>
    writeFileSync(certPath, lab.sign(hostCa, hostKey, ['-I', `${name} host`, '-z', '31', ...hostCert]))
  // Another host key type than the fixture's ed25519: made here, and named in place of the fixture's.
  const own = hostKeyType && lab.key(`${name}-host-key`, ...hostKeyType)
  if (own) certify(own)
  const sshd = await startSshd({
    config: [
      ...(own ? [`HostKey ${own.path}`] : []),
      `HostCertificate ${certPath}`,
      `TrustedUserCAKeys ${userCa.path}.pub`,
      `AuthorizedPrincipalsFile ${principalsPath}`,
      'AuthorizedKeysFile none'
    ],
    prepare: (dir) => {
      if (!own) certify(lab.read(join(dir, 'host_ed25519')))
    }
  })
  servers.push(sshd)
  return sshd
}

beforeAll(() => {
  hostCa = lab.key('host-ca')
  userCa = lab.key('user-ca')
  user = lab.key('deploy')
})
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()))
  rmSync(lab.dir, { recursive: true, force: true })
})

describe('host certificates (@cert-authority)', () => {
  let good: Sshd
  let cert: string
  beforeAll(async () => {
    good = await certificateSshd('good', ['-h', '-n', '127.0.0.1', '-V', '-5m:+1h'])
    cert = lab.sign(userCa, user, ['-I', 'deploy-run-7', '-z', '7', '-n', 'deploy', '-V', '-5m:+1h'])
  })
  const login = (sshd: Sshd, knownHosts: string) =>
    runAction({
      hosts: hostName(sshd, sshd.ports[0]),
      'private-key': user.privateText,
      certificate: cert,
      'known-hosts': knownHosts,
      run: 'echo in'
    })

  test('a host is accepted through the CA line alone, and the log says which CA, key id and serial', async () => {
    const run = await login(good, `# the fleet's CA\n${authority()}`)
    expect(run.code, run.stdout).toBe(0)
    expect(hostResult(run, hostName(good, good.ports[0])).steps[0].stdoutTail).toBe('in')
    expect(run.stdout).toContain(
      `host key ssh-ed25519 ${good.fingerprint} accepted: certificate signed by CA ssh-ed25519 ${fingerprint(hostCa)} (known-hosts line 2), key id "good host", serial 31`
    )
    // The server did present its certificate, and took the user's: the login was by certificate.
    expect(good.log()).toMatch(
      /Accepted publickey for \S+ from 127\.0\.0\.1 port \d+ ssh2: ED25519-CERT SHA256:\S+ ID deploy-run-7 \(serial 7\) CA ED25519/
    )
  })

  test.each([
    ['a name not among its principals', ['-h', '-n', 'other.example'], 'refused: principal 127.0.0.1 not listed'],
    ['an expired certificate', ['-h', '-n', '127.0.0.1', '-V', '20200101:20200102'], 'refused: expired since 2020-01-02T00:00:00Z'],
    ['a user certificate offered as a host one', ['-n', '127.0.0.1'], 'refused: not a host certificate']
  ])('refused: %s, before authentication', async (name, args, reason) => {
    const sshd = await certificateSshd(name.replace(/\W+/g, '-'), args)
    const run = await login(sshd, authority())
    const r = hostResult(run, hostName(sshd, sshd.ports[0]))
    expect(r.status).toBe('failed')
    expect(r.attempts).toBe(1) // a refused key is never retried
    expect(r.error).toContain(`host key refused: host certificate signed by CA ${fingerprint(hostCa)} (known-hosts line 1)`)
    expect(r.error).toContain(reason)
    expect(sshd.log()).not.toMatch(/Accepted publickey/)
  })

  test("a CA line in the runner's ~/.ssh/known_hosts, read when the workflow names no key", async () => {
    const home = mkdtempSync(join(tmpdir(), 'ssh-fleet-home-'))
    mkdirSync(join(home, '.ssh'))
    writeFileSync(
      join(home, '.ssh', 'known_hosts'),
      `${good.knownHosts.replace(/ssh-ed25519 \S+/, keyOf(lab.key('unrelated')))}\n@cert-authority [127.0.0.1]:* ${keyOf(hostCa)}\n`
    )
    try {
      const run = await runAction(
        { hosts: hostName(good, good.ports[0]), 'private-key': user.privateText, certificate: cert, run: 'true' },
        { env: { HOME: home } }
      )
      expect(run.code, run.stdout).toBe(0)
      expect(run.stdout).toContain(`certificate signed by CA ssh-ed25519 ${fingerprint(hostCa)} (~/.ssh/known_hosts line 2)`)
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  })

  test('refused: a revoked CA, even where a pin names the plain key; the plain key still counts without it', async () => {
    const host = hostName(good, good.ports[0])
    const revoked = await runAction({
      hosts: host,
      'private-key': user.privateText,
      certificate: cert,
      'known-hosts': `${authority()}\n@revoked * ${keyOf(hostCa)}`,
      fingerprint: good.fingerprint,
      run: 'echo in'
    })
    expect(hostResult(revoked, host).error).toContain(
      `host certificate signed by revoked CA ssh-ed25519 ${fingerprint(hostCa)} (@revoked, known-hosts line 2)`
    )
    // OpenSSH's fallback: the certificate is asked for (a CA line covers the host) but no line names its
    // CA, which leaves its plain key, which a plain line names.
    const plain = await login(good, `${good.knownHosts}\n${authority(lab.key('another-ca'))}`)
    expect(plain.code, plain.stdout).toBe(0)
    expect(plain.stdout).toContain(
      `host key ssh-ed25519 ${good.fingerprint} accepted by known-hosts line 1 (host certificate signed by CA ssh-ed25519 ${fingerprint(hostCa)}: no @cert-authority line for [127.0.0.1]:${good.ports[0]} or 127.0.0.1 names that CA)`
    )
  })
})

describe('user certificates (TrustedUserCAKeys, AuthorizedKeysFile none)', () => {
  let sshd: Sshd
  let host: string
  beforeAll(async () => {
    sshd = await certificateSshd('users', ['-h', '-n', '127.0.0.1'], ['deploy'])
    host = hostName(sshd, sshd.ports[0])
  })
  const run = (inputs: Record<string, string>) => runAction({ hosts: host, 'known-hosts': authority(), run: 'echo in', ...inputs })

  test('a user logs in with a certificate only: no authorized_keys entry, and the plain key alone is refused', async () => {
    const cert = lab.sign(userCa, user, ['-I', 'run-1', '-n', 'deploy', '-V', '-1m:+10m'])
    const withCert = await run({ 'private-key': user.privateText, certificate: cert })
    expect(withCert.code, withCert.stdout).toBe(0)
    const keyOnly = await run({ 'private-key': user.privateText })
    const r = hostResult(keyOnly, host)
    expect(r.status).toBe('failed')
    expect(r.error).toContain(`publickey ssh-ed25519 ${fingerprint(user)} refused`)
  })

  test('refused for a principal the server does not map to the user; the failure names the certificate offered', async () => {
    // A principal holding a newline: the trail shows it escaped, on the failure's one line.
    const cert = lab.sign(userCa, user, ['-I', 'run-2', '-n', 'someone-else,evil\n::error::forged', '-V', '-1m:+10m'])
    const r = hostResult(await run({ 'private-key': user.privateText, certificate: cert }), host)
    expect(r.status).toBe('failed')
    expect(r.error).toContain(
      `publickey ssh-ed25519-cert-v01@openssh.com ${fingerprint(user)} (key id "run-2", serial 0, principals "someone-else","evil\\n::error::forged", expires 20`
    )
    // The certificate, then its plain key, as OpenSSH offers them; the end of its validity named.
    expect(r.error).toMatch(
      /principals "someone-else","evil\\n::error::forged", expires 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ, from certificate\), publickey ssh-ed25519 \S+ refused/
    )
    expect(sshd.log()).toContain('Certificate does not contain an authorized principal')
  })

  test('an RSA host certificate (rsa-sha2-512-cert-v01), and RSA and ECDSA user certificates', async () => {
    const rsaHost = await certificateSshd('rsa-host', ['-h', '-n', '127.0.0.1'], ['deploy'], ['rsa', 3072])
    const target = hostName(rsaHost, rsaHost.ports[0])
    for (const [type, bits] of [
      ['rsa', 3072],
      ['ecdsa', 384]
    ] as const) {
      const key = lab.key(`${type}-user`, type, bits)
      const cert = lab.sign(userCa, key, ['-I', `${type}-login`, '-n', 'deploy', '-V', '-1m:+10m'])
      const login = await runAction({
        hosts: target,
        'private-key': key.privateText,
        certificate: cert,
        'known-hosts': authority(),
        run: 'echo in'
      })
      expect(login.code, login.stdout).toBe(0)
      expect(login.stdout).toMatch(/host key ssh-rsa SHA256:\S+ accepted: certificate signed by CA ssh-ed25519/)
    }
    expect(rsaHost.log()).toMatch(/RSA-CERT SHA256:\S+ ID rsa-login/)
    expect(rsaHost.log()).toMatch(/ECDSA-CERT SHA256:\S+ ID ecdsa-login/)
  })

  test('an expired certificate is named before connecting, and nothing connects', async () => {
    const cert = lab.sign(userCa, user, ['-I', 'run-3', '-n', 'deploy', '-V', '20200101:20200102'])
    const before = sshd.log().length
    const expired = await run({ 'private-key': user.privateText, certificate: cert })
    expect(expired.code).not.toBe(0)
    expect(expired.stdout).toContain("::error::Invalid input 'certificate': the certificate is expired since 2020-01-02T00:00:00Z")
    expect(sshd.log().slice(before)).not.toContain('Connection from')
  })

  test('a certificate held by an agent (ssh-add loads key-cert.pub beside the key)', async () => {
    const key = lab.key('agent-user')
    lab.sign(userCa, key, ['-I', 'agent-run', '-n', 'deploy', '-V', '-1m:+10m'])
    await withAgent([key], async (socket) => {
      const viaAgent = await runAction(
        { hosts: host, 'known-hosts': authority(), run: 'echo in', agent: 'true' },
        { env: { SSH_AUTH_SOCK: socket } }
      )
      expect(viaAgent.code, viaAgent.stdout).toBe(0)
      expect(sshd.log()).toMatch(/ED25519-CERT SHA256:\S+ ID agent-run/)
    })
  })

  test("an ssh-config CertificateFile whose key only the agent holds: the agent's key signs for it", async () => {
    const key = lab.key('agent-only')
    // The agent gets the plain key alone: the certificate is written after ssh-add, and named by ssh config.
    await withAgent([key], async (socket) => {
      const certPath = join(lab.dir, 'agent-only-file-cert.pub')
      writeFileSync(certPath, lab.sign(userCa, key, ['-I', 'agent-file', '-n', 'deploy', '-V', '-1m:+10m']))
      const config = [
        'Host app',
        '  HostName 127.0.0.1',
        `  Port ${sshd.ports[0]}`,
        `  User ${sshd.user}`,
        `  CertificateFile ${certPath}`
      ].join('\n')
      const run = await runAction(
        { hosts: 'app', 'ssh-config': config, 'known-hosts': authority(), run: 'echo in', agent: 'true' },
        { env: { SSH_AUTH_SOCK: socket } }
      )
      expect(run.code, run.stdout).toBe(0)
      expect(sshd.log()).toMatch(/Accepted publickey for \S+ from 127\.0\.0\.1 port \d+ ssh2: ED25519-CERT SHA256:\S+ ID agent-file/)
    })
  })
})

/** Runs `fn` with an ssh-agent holding `keys` (their -cert.pub beside them, if any, as ssh-add loads it). */
async function withAgent(keys: KeyFiles[], fn: (socket: string) => Promise<void>): Promise<void> {
  const agentDir = mkdtempSync(join(tmpdir(), 'ssh-fleet-agent-'))
  const socket = join(agentDir, 'agent.sock')
  const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' })
  try {
    for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50))
    for (const key of keys) execFileSync('ssh-add', [key.path], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' })
    await fn(socket)
  } finally {
    agent.kill()
    rmSync(agentDir, { recursive: true, force: true })
  }
}

describe('through a bastion', () => {
  let bastion: Sshd
  let target: Sshd
  beforeAll(async () => {
    bastion = await certificateSshd('bastion', ['-h', '-n', '127.0.0.1'], ['jump'])
    target = await certificateSshd('target', ['-h', '-n', '127.0.0.1'], ['deploy'])
  })

  test('the bastion and the host each accepted by the CA line, each login by its own certificate (proxy-certificate)', async () => {
    const host = hostName(target, target.ports[0])
    const run = await runAction({
      hosts: host,
      'private-key': user.privateText,
      certificate: lab.sign(userCa, user, ['-I', 'host-cert', '-n', 'deploy', '-V', '-1m:+10m']),
      'proxy-jump': hostName(bastion, bastion.ports[0]),
      'proxy-certificate': lab.sign(userCa, user, ['-I', 'jump-cert', '-n', 'jump', '-V', '-1m:+10m']),
      'known-hosts': authority(),
      run: 'echo "from ${SSH_CONNECTION%% *}"'
    })
    expect(run.code, run.stdout).toBe(0)
    expect(run.stdout).toMatch(/: connected; host key ssh-ed25519 \S+ accepted: certificate signed by CA .*key id "bastion host"/)
    expect(run.stdout).toContain('key id "target host"')
    expect(bastion.log()).toMatch(/ID jump-cert \(serial 0\)/)
    expect(target.log()).toMatch(/ID host-cert \(serial 0\)/)
  })

  test('a bastion refused by its certificate (expired) is named, and no host is tried behind it', async () => {
    const expiredBastion = await certificateSshd('expired-bastion', ['-h', '-n', '127.0.0.1', '-V', '20200101:20200102'], ['deploy'])
    const host = hostName(target, target.ports[0])
    const before = target.log().length
    const run = await runAction({
      hosts: host,
      'private-key': user.privateText,
      certificate: lab.sign(userCa, user, ['-I', 'x', '-n', 'deploy', '-V', '-1m:+10m']),
      'proxy-jump': hostName(expiredBastion, expiredBastion.ports[0]),
      'known-hosts': authority(),
      run: 'true'
    })
    const r = hostResult(run, host)
    expect(r.status).toBe('failed')
    expect(r.error).toContain('expired since 2020-01-02T00:00:00Z')
    expect(target.log().slice(before)).not.toContain('Connection from')
  })

  test('an ssh config: ProxyJump to a bastion whose IdentityFile has its -cert.pub beside it', async () => {
    const jumpKey = lab.key('jump-id')
    lab.sign(userCa, jumpKey, ['-I', 'config-jump', '-n', 'jump', '-V', '-1m:+10m'])
    const config = [
      'Host bastion',
      '  HostName 127.0.0.1',
      `  Port ${bastion.ports[0]}`,
      `  User ${bastion.user}`,
      `  IdentityFile ${jumpKey.path}`,
      'Host app',
      '  HostName 127.0.0.1',
      `  Port ${target.ports[0]}`,
      `  User ${target.user}`,
      '  ProxyJump bastion',
      `  IdentityFile ${user.path}`,
      `  CertificateFile ${join(lab.dir, 'app-cert.pub')}`
    ].join('\n')
    writeFileSync(join(lab.dir, 'app-cert.pub'), lab.sign(userCa, user, ['-I', 'config-app', '-n', 'deploy', '-V', '-1m:+10m']))
    const run = await runAction({ hosts: 'app', 'ssh-config': config, 'known-hosts': authority(), run: 'echo via config' })
    expect(run.code, run.stdout).toBe(0)
    expect(bastion.log()).toMatch(/ID config-jump/)
    expect(target.log()).toMatch(/ID config-app/)
  })
})
