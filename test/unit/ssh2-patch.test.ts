import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { Client, Server, utils, type ParsedKey } from 'ssh2'
import { certifiedKey } from '../../src/plan/certified-key'
import { algorithms, hasMlKem, keyExchangeNote, POST_QUANTUM_KEX } from '../../src/ssh/algorithms'
import { HOST_CERTIFICATE_ALGORITHMS } from '../../src/ssh/host-keys'
import { generateKey } from '../../demo/fleet.js'

// ssh2 as patches/ssh2+1.17.0.patch changes it (applied by the build and by vitest's global setup).
const dir = mkdtempSync(join(tmpdir(), 'ssh-fleet-ssh2-patch-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const keygen = (name: string, type = 'ed25519'): string => {
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', join(dir, name)])
  return readFileSync(join(dir, name), 'utf8')
}
/** `name`'s public key certified by the CA `ca`, as its `-cert.pub` text. */
const certify = (ca: string, name: string): string => {
  execFileSync('ssh-keygen', ['-q', '-s', join(dir, ca), '-I', 'test', '-n', 'deploy', join(dir, `${name}.pub`)])
  return readFileSync(join(dir, `${name}-cert.pub`), 'utf8')
}
const parsed = (text: string): ParsedKey => utils.parseKey(text) as ParsedKey
const blobOf = (line: string): Buffer => Buffer.from(line.split(' ')[1], 'base64')

keygen('ca')

describe('the patched ssh2', () => {
  test('reads a certificate as a key whose SSH form is the whole certificate and whose key is the certified one', () => {
    for (const type of ['ed25519', 'ecdsa', 'rsa']) {
      const key = parsed(keygen(type, type))
      const certText = certify('ca', type)
      const cert = parsed(certText)
      expect(cert.type).toBe(certText.split(' ')[0])
      // Unpatched, ssh2 reads the certificate's nonce as the ed25519 key and keeps only that.
      expect(cert.getPublicSSH().equals(blobOf(certText))).toBe(true)
      const signature = key.sign(Buffer.from('data')) as Buffer
      expect(cert.verify(Buffer.from('data'), signature)).toBe(true)
    }
  })

  test('accepts host certificate algorithms in algorithms.serverHostKey (unpatched: "Unsupported algorithm")', () => {
    const client = new Client()
    client.on('error', () => {})
    expect(() =>
      client.connect({
        host: '127.0.0.1',
        port: 1,
        username: 'u',
        algorithms: { serverHostKey: [...HOST_CERTIFICATE_ALGORITHMS] as never }
      })
    ).not.toThrow()
    client.end()
  })
})

describe('certifiedKey', () => {
  const key = parsed(keygen('user'))
  const certText = certify('ca', 'user')

  test('is the private key, with the certificate as type and public blob', () => {
    const certified = certifiedKey(key, certText)
    expect(certified.type).toBe('ssh-ed25519-cert-v01@openssh.com')
    expect(certified.getPublicSSH().equals(blobOf(certText))).toBe(true)
    expect(certified.isPrivateKey()).toBe(true)
    // ssh2 takes it as a parsed key (it would read it as text otherwise, and refuse it).
    expect(utils.parseKey(certified as unknown as string)).toBe(certified)
  })

  test('refuses a plain public key, and a certificate of another key', () => {
    expect(() => certifiedKey(key, readFileSync(join(dir, 'user.pub'), 'utf8'))).toThrow(/is not an OpenSSH certificate/)
    expect(() => certifiedKey(key, certify('ca', 'ed25519'))).toThrow(/certifies another key/)
  })
})

describe('post-quantum key exchange', () => {
  const host = { name: 'h', hostname: 'h', port: 22, user: 'u' } as never
  const offered = (): string[] | undefined =>
    ((algorithms({ hostKeys: { mode: 'strict', knownHosts: [], fingerprints: [] } as never }, host) as { kex?: { prepend?: string[] } }).kex
      ?.prepend ?? []) as string[]

  test(`is offered first exactly when the runtime has ML-KEM (${process.version}: ${hasMlKem})`, () => {
    expect(offered()).toEqual(hasMlKem ? [POST_QUANTUM_KEX] : [])
    expect(keyExchangeNote(POST_QUANTUM_KEX)).toBe('')
    expect(keyExchangeNote('curve25519-sha256')).toMatch(/^; key exchange curve25519-sha256 \(not post-quantum: /)
  })

  // ssh2's own server, in process: the patch carries both sides, and this pins the exchange's arithmetic
  // on a runtime with ML-KEM; against OpenSSH 10 it is test/integration/ssh2-patch.test.ts.
  test.runIf(hasMlKem)('an ssh2 client and server agree on mlkem768x25519-sha256 and finish the handshake', async () => {
    const hostKey = generateKey()
    const server = new Server({ hostKeys: [hostKey.private], algorithms: { kex: [POST_QUANTUM_KEX] as never } }, (c) => {
      c.on('error', () => {})
      c.on('authentication', (ctx) => ctx.accept())
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    const client = new Client()
    const kex = await new Promise<string>((resolve, reject) => {
      let negotiated = ''
      client.on('handshake', (n) => (negotiated = n.kex))
      client.on('ready', () => resolve(negotiated)).on('error', reject)
      client.connect({ host: '127.0.0.1', port, username: 'u', hostVerifier: () => true, algorithms: { kex: [POST_QUANTUM_KEX] as never } })
    })
    client.end()
    server.close()
    expect(kex).toBe(POST_QUANTUM_KEX)
  })
})
