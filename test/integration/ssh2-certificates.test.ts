/**
 * OpenSSH certificates at the protocol level, against a real OpenSSH 9.2 sshd: the patched ssh2
 * (patches/) asking for host certificates and logging in with user certificates, from a key and
 * certificate pair and from an agent. What accepts a certificate (CA, principals, validity) is not
 * checked here: ssh2 hands the certificate to the host verifier, and sshd checks the user's.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createConnection, createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { Client, utils, type ConnectConfig, type ParsedKey } from 'ssh2'
import { certifiedKey } from '../../src/plan/certified-key'
import { AuthTrail, authHandler } from '../../src/ssh/auth'
import { startSshd, type Sshd } from '../helpers/sshd'

const mine = mkdtempSync(join(tmpdir(), 'ssh-fleet-certs-'))
afterAll(() => rmSync(mine, { recursive: true, force: true }))
const path = (name: string): string => join(mine, name)
const keygen = (name: string, type = 'ed25519'): void => {
  rmSync(path(name), { force: true })
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', path(name)])
}
/**
 * `name`'s key certified by `ca`, written to `name-cert.pub` and returned as its text. A fixed
 * validity, so two certificates of keys of one type have the same length (the relay below swaps them).
 */
const certify = (name: string, options: { host?: boolean; principal: string; ca?: string }): string => {
  const args = ['-q', '-s', path(options.ca ?? 'ca'), '-I', 'ssh-fleet-test', '-n', options.principal, '-V', '20200101:20991231']
  execFileSync('ssh-keygen', [...args, ...(options.host ? ['-h'] : []), path(`${name}.pub`)])
  return readFileSync(path(`${name}-cert.pub`), 'utf8')
}
const blobOf = (text: string): Buffer => Buffer.from(text.split(' ')[1], 'base64')
const parsed = (name: string): ParsedKey => utils.parseKey(readFileSync(path(name), 'utf8')) as ParsedKey

/**
 * Connects with `config`, and `key` as the only method (ssh2 takes key objects only from an auth
 * handler: its `privateKey` is text); resolves, once closed, with how it ended (`ready`, or the error).
 */
function attempt(
  port: number,
  config: Partial<ConnectConfig> & { key?: ParsedKey }
): Promise<{ ready: boolean; error?: string; level?: string }> {
  return new Promise((resolve) => {
    const client = new Client()
    let outcome: { ready: boolean; error?: string; level?: string } = { ready: false, error: 'closed' }
    client.on('ready', () => {
      outcome = { ready: true }
      client.end()
    })
    client.on('error', (err: Error & { level?: string }) => (outcome = { ready: false, error: err.message, level: err.level }))
    client.on('close', () => resolve(outcome))
    const { key, ...rest } = config
    const auth = key ? { authHandler: [{ type: 'publickey' as const, username: config.username as string, key }] } : {}
    client.connect({ host: '127.0.0.1', port, readyTimeout: 20_000, ...rest, ...auth } as ConnectConfig)
  })
}

describe('host certificates: sshd with HostCertificate', () => {
  let sshd: Sshd
  const hostKeys = { ed25519: 'ed25519', ecdsa: 'ecdsa', rsa: 'rsa' }
  const certs: Record<string, string> = {}
  beforeAll(async () => {
    keygen('ca')
    for (const [name, type] of Object.entries(hostKeys)) {
      keygen(`host_${name}`, type)
      certs[name] = certify(`host_${name}`, { host: true, principal: '127.0.0.1' })
    }
    sshd = await startSshd({
      config: Object.keys(hostKeys).flatMap((name) => [
        `HostKey ${path(`host_${name}`)}`,
        `HostCertificate ${path(`host_${name}-cert.pub`)}`
      ])
    })
  })
  afterAll(() => sshd?.stop())

  for (const [algorithm, name] of [
    ['ssh-ed25519-cert-v01@openssh.com', 'ed25519'],
    ['ecdsa-sha2-nistp256-cert-v01@openssh.com', 'ecdsa'],
    ['rsa-sha2-512-cert-v01@openssh.com', 'rsa'],
    ['rsa-sha2-256-cert-v01@openssh.com', 'rsa']
  ]) {
    test(`${algorithm}: negotiated, the signature checked with the certified key, the verifier given the certificate`, async () => {
      const seen: Array<{ key: Buffer; algorithm: string }> = []
      const result = await attempt(sshd.ports[0], {
        username: sshd.user,
        privateKey: sshd.clientKey,
        algorithms: { serverHostKey: [algorithm] as never },
        hostVerifier: ((key: Buffer, _verify: unknown, negotiated: string) => {
          seen.push({ key, algorithm: negotiated })
          return true
        }) as never
      })
      expect(result).toEqual({ ready: true })
      expect(seen).toHaveLength(1)
      expect(seen[0].key.equals(blobOf(certs[name]))).toBe(true)
      expect(seen[0].algorithm).toBe(algorithm)
    })
  }

  test('a certificate whose key did not sign the exchange (swapped on the way by a relay) is refused', async () => {
    // Another ed25519 key's certificate, with the same CA, principal and validity: the same length, so
    // the relay can swap it in the server's (still unencrypted) key exchange reply.
    keygen('other_ed25519')
    const other = blobOf(certify('other_ed25519', { host: true, principal: '127.0.0.1' }))
    const genuine = blobOf(certs.ed25519)
    expect(other.length).toBe(genuine.length)
    const relay = await swappingRelay(sshd.ports[0], genuine, other)
    try {
      const seen: Buffer[] = []
      const result = await attempt((relay.address() as { port: number }).port, {
        username: sshd.user,
        privateKey: sshd.clientKey,
        algorithms: { serverHostKey: ['ssh-ed25519-cert-v01@openssh.com'] as never },
        hostVerifier: (key: Buffer) => {
          seen.push(key)
          return true
        }
      })
      expect(seen.map((k) => k.equals(other))).toEqual([true])
      expect(result).toMatchObject({ ready: false, error: 'Handshake failed: signature verification failed', level: 'handshake' })
    } finally {
      relay.close()
    }
  })
})

/**
 * A TCP relay to 127.0.0.1:`port` that replaces the first `from` in the server's bytes with `to`
 * (as long): a man in the middle presenting another host's certificate.
 */
async function swappingRelay(port: number, from: Buffer, to: Buffer): Promise<Server> {
  const server = createServer((client) => {
    const upstream = createConnection(port, '127.0.0.1')
    client.pipe(upstream)
    // sshd writes its key exchange reply (under 1 KiB) at once: on loopback it arrives in one chunk.
    upstream.on('data', (chunk: Buffer) => {
      const at = chunk.indexOf(from)
      if (at >= 0) to.copy(chunk, at)
      client.write(chunk)
    })
    const end = (): void => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return server
}

describe('user certificates: sshd with TrustedUserCAKeys and no authorized_keys', () => {
  let sshd: Sshd
  const agents: ChildProcess[] = []
  beforeAll(async () => {
    keygen('user_ca')
    sshd = await startSshd({
      config: [`TrustedUserCAKeys ${path('user_ca.pub')}`, 'AuthorizedKeysFile none', 'LogLevel DEBUG1']
    })
  })
  afterAll(async () => {
    for (const agent of agents) agent.kill()
    await sshd?.stop()
  })
  /** sshd's lines saying which key it accepted. */
  const accepted = (): string[] => sshd.log().match(/^Accepted publickey for .*$/gm) ?? []

  test('a key with its certificate logs in; the key alone, or a certificate for another user, does not', async () => {
    keygen('user')
    const cert = certify('user', { ca: 'user_ca', principal: sshd.user })
    const key = parsed('user')
    expect(await attempt(sshd.ports[0], { username: sshd.user, key, hostVerifier: () => true })).toMatchObject({
      ready: false,
      level: 'client-authentication'
    })
    const result = await attempt(sshd.ports[0], { username: sshd.user, key: certifiedKey(key, cert), hostVerifier: () => true })
    expect(result).toEqual({ ready: true })
    expect(accepted().at(-1)).toMatch(/ ED25519-CERT SHA256:\S+ ID ssh-fleet-test \(serial 0\) CA ED25519 /)
    const elsewhere = certify('user', { ca: 'user_ca', principal: 'someone-else' })
    expect(
      await attempt(sshd.ports[0], { username: sshd.user, key: certifiedKey(key, elsewhere), hostVerifier: () => true })
    ).toMatchObject({ ready: false, level: 'client-authentication' })
  })

  test('an RSA certificate signs with rsa-sha2-512-cert-v01@openssh.com where the server accepts only that (ssh-fleet auth)', async () => {
    const strict = await startSshd({
      config: [
        `TrustedUserCAKeys ${path('user_ca.pub')}`,
        'AuthorizedKeysFile none',
        'LogLevel DEBUG1',
        'PubkeyAcceptedAlgorithms rsa-sha2-512-cert-v01@openssh.com'
      ]
    })
    try {
      keygen('user_rsa', 'rsa')
      const key = certifiedKey(parsed('user_rsa'), certify('user_rsa', { ca: 'user_ca', principal: strict.user }))
      const client = new Client()
      const trail = new AuthTrail()
      const result = await new Promise<string>((resolve) => {
        let outcome = 'closed'
        client.on('ready', () => ((outcome = 'ready'), client.end())).on('error', (err) => (outcome = err.message))
        client.on('close', () => resolve(outcome))
        client.connect({
          host: '127.0.0.1',
          port: strict.ports[0],
          username: strict.user,
          hostVerifier: () => true,
          authHandler: authHandler(client, strict.user, { privateKey: key } as never, trail)
        })
      })
      expect(result).toBe('ready')
      // ssh2 offers rsa-sha2-256-cert-v01 first (as for the plain key), then rsa-sha2-512-cert-v01.
      expect(strict.log()).toMatch(/signature algorithm rsa-sha2-256-cert-v01@openssh\.com not in PubkeyAcceptedAlgorithms/)
      expect(strict.log()).toMatch(/^Accepted publickey for \S+ from \S+ port \d+ ssh2: RSA-CERT /m)
    } finally {
      await strict.stop()
    }
  })

  test("an ECDSA key with its certificate logs in (its signature converted as the plain key's)", async () => {
    keygen('user_ecdsa', 'ecdsa')
    const key = certifiedKey(parsed('user_ecdsa'), certify('user_ecdsa', { ca: 'user_ca', principal: sshd.user }))
    expect(await attempt(sshd.ports[0], { username: sshd.user, key, hostVerifier: () => true })).toEqual({ ready: true })
    expect(accepted().at(-1)).toMatch(/ ECDSA-CERT SHA256:\S+ ID ssh-fleet-test \(serial 0\) CA ED25519 /)
  })

  // An RSA certificate's key signs with the SHA-2 flags (the patch's agent.js hunk): without them the
  // agent signs with ssh-rsa (SHA-1), which OpenSSH 9.2 refuses.
  test.each([
    ['ed25519', 'ED25519-CERT'],
    ['rsa', 'RSA-CERT']
  ])("an agent's %s certificate logs in", async (type, logged) => {
    keygen(`agent_${type}`, type)
    certify(`agent_${type}`, { ca: 'user_ca', principal: sshd.user })
    const sock = path(`agent-${type}.sock`)
    agents.push(spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' }))
    await expect.poll(() => execFileSync('sh', ['-c', `test -S ${sock} && echo yes || echo no`], { encoding: 'utf8' }).trim()).toBe('yes')
    // ssh-add adds the key and, beside it, its -cert.pub.
    execFileSync('ssh-add', [path(`agent_${type}`)], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' })
    expect(execFileSync('ssh-add', ['-l'], { env: { ...process.env, SSH_AUTH_SOCK: sock }, encoding: 'utf8' })).toContain(`(${logged})`)
    const result = await attempt(sshd.ports[0], { username: sshd.user, agent: sock, hostVerifier: () => true })
    expect(result).toEqual({ ready: true })
    expect(accepted().at(-1)).toMatch(new RegExp(` ${logged} SHA256:\\S+ ID ssh-fleet-test \\(serial 0\\) CA ED25519 `))
  })
})
