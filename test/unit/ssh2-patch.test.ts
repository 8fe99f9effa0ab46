import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createConnection, createServer, type Server as NetServer } from 'node:net'
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
  // Without ML-KEM (Node 20) the patched ssh2 must not claim the exchange: asking for it is refused up front.
  const handshakeTitle = hasMlKem
    ? 'an ssh2 client and server agree on mlkem768x25519-sha256 and finish the handshake'
    : 'without ML-KEM, ssh2 refuses mlkem768x25519-sha256 as an algorithm it cannot do'
  test(handshakeTitle, async () => {
    if (!hasMlKem) {
      const connect = () =>
        new Client().connect({ host: '127.0.0.1', port: 1, username: 'u', algorithms: { kex: [POST_QUANTUM_KEX] as never } })
      expect(connect).toThrow(/Unsupported algorithm: mlkem768x25519-sha256/)
      return
    }
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

  // A hostile server (ssh2's, its key exchange reply rewritten by a relay): every malformed ML-KEM reply is
  // refused in the handshake. Without ML-KEM (Node 20), a server that insists on the exchange (its KEXINIT
  // rewritten to list it alone) is refused at negotiation: the client never starts an exchange it cannot do.
  const hostileTitle = hasMlKem
    ? "a server's malformed mlkem768x25519-sha256 reply is refused: ciphertext short, long or empty, zero X25519 point, a flipped bit"
    : 'without ML-KEM, a server offering only mlkem768x25519-sha256 is refused at negotiation'
  test(hostileTitle, async () => {
    const server = new Server(
      { hostKeys: [generateKey().private], ...(hasMlKem ? { algorithms: { kex: [POST_QUANTUM_KEX] as never } } : {}) },
      (c) => {
        c.on('error', () => {})
        c.on('authentication', (ctx) => ctx.accept())
      }
    )
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    const through = async (type: number, rewrite: (payload: Buffer) => Buffer): Promise<string> => {
      const relay = await rewritingRelay(port, type, rewrite)
      try {
        return await handshake((relay.address() as { port: number }).port, hasMlKem ? [POST_QUANTUM_KEX] : undefined)
      } finally {
        relay.close()
      }
    }
    try {
      if (!hasMlKem) {
        expect(await through(KEXINIT, (p) => withKexList(p, POST_QUANTUM_KEX))).toBe('Handshake failed: no matching key exchange algorithm')
        return
      }
      // The server's Q_S: the ML-KEM ciphertext (1088 bytes), then its X25519 key (32).
      const reply = (change: (q: Buffer) => Buffer) => (p: Buffer) => withServerKey(p, change)
      const length = /Error while computing DH secret \(mlkem768x25519\): Bad server reply length/
      expect(
        await through(
          ECDH_REPLY,
          reply((q) => Buffer.concat([q.subarray(0, 1087), q.subarray(1088)]))
        )
      ).toMatch(length)
      expect(
        await through(
          ECDH_REPLY,
          reply((q) => Buffer.concat([q.subarray(0, 1088), Buffer.from([0]), q.subarray(1088)]))
        )
      ).toMatch(length)
      expect(
        await through(
          ECDH_REPLY,
          reply(() => Buffer.alloc(0))
        )
      ).toMatch(length)
      // An all-zero X25519 point: OpenSSL refuses the all-zero shared secret it yields (RFC 7748 section 6.1).
      expect(
        await through(
          ECDH_REPLY,
          reply((q) => Buffer.concat([q.subarray(0, 1088), Buffer.alloc(32)]))
        )
      ).toMatch(/^Error while computing DH secret \(mlkem768x25519\): .*failed during derivation/)
      // A flipped bit in the ciphertext decapsulates to another secret (ML-KEM's implicit rejection): the
      // server's signature over the exchange hash then fails.
      const flipped = (q: Buffer): Buffer => {
        const copy = Buffer.from(q)
        copy[100] ^= 1
        return copy
      }
      expect(await through(ECDH_REPLY, reply(flipped))).toBe('Handshake failed: signature verification failed')
      // The relay itself changes nothing when it rewrites nothing: the same path, unchanged, connects.
      expect(
        await through(
          ECDH_REPLY,
          reply((q) => q)
        )
      ).toBe('ready')
    } finally {
      server.close()
    }
  })
})

const KEXINIT = 20
const ECDH_REPLY = 31

/** Connects (any host key accepted) and resolves with `ready` or the error's message. */
function handshake(port: number, kex: string[] | undefined): Promise<string> {
  return new Promise((resolve) => {
    const client = new Client()
    let outcome = 'closed'
    client.on('ready', () => ((outcome = 'ready'), client.end()))
    client.on('error', (err) => (outcome = err.message))
    client.on('close', () => resolve(outcome))
    client.connect({
      host: '127.0.0.1',
      port,
      username: 'u',
      hostVerifier: () => true,
      ...(kex ? { algorithms: { kex: kex as never } } : {})
    })
  })
}

/** SSH wire strings: `[uint32 length][bytes]`. */
function str(b: Buffer): Buffer {
  const len = Buffer.alloc(4)
  len.writeUInt32BE(b.length)
  return Buffer.concat([len, b])
}
/** The strings of `payload` after its first `skip` bytes. */
function strings(payload: Buffer, skip: number): Buffer[] {
  const out: Buffer[] = []
  for (let at = skip; at + 4 <= payload.length;) {
    const len = payload.readUInt32BE(at)
    out.push(payload.subarray(at + 4, at + 4 + len))
    at += 4 + len
  }
  return out
}
/** KEX_ECDH_REPLY (byte 31, K_S, Q_S, signature) with its Q_S changed. */
function withServerKey(payload: Buffer, change: (q: Buffer) => Buffer): Buffer {
  const [hostKey, q, signature] = strings(payload, 1)
  return Buffer.concat([payload.subarray(0, 1), str(hostKey), str(change(q)), str(signature)])
}
/** KEXINIT (byte 20, 16-byte cookie, name-lists, …) with its key exchange list replaced by `kex`. */
function withKexList(payload: Buffer, kex: string): Buffer {
  const listLength = payload.readUInt32BE(17)
  return Buffer.concat([payload.subarray(0, 17), str(Buffer.from(kex)), payload.subarray(21 + listLength)])
}

/**
 * A TCP relay to 127.0.0.1:`port` that rewrites the server's first packet of `type` with `rewrite` and
 * frames it anew (the key exchange is still unencrypted, without MAC): a man in the middle, or a broken
 * server. Everything else passes unchanged.
 */
async function rewritingRelay(port: number, type: number, rewrite: (payload: Buffer) => Buffer): Promise<NetServer> {
  const relay = createServer((client) => {
    const upstream = createConnection(port, '127.0.0.1')
    client.pipe(upstream)
    let pending = Buffer.alloc(0)
    let state: 'ident' | 'packets' | 'done' = 'ident'
    upstream.on('data', (chunk: Buffer) => {
      if (state === 'done') return void client.write(chunk)
      pending = Buffer.concat([pending, chunk])
      if (state === 'ident') {
        const end = pending.indexOf('\r\n')
        if (end < 0) return
        client.write(pending.subarray(0, end + 2))
        pending = pending.subarray(end + 2)
        state = 'packets'
      }
      while (state === 'packets' && pending.length >= 5) {
        const total = 4 + pending.readUInt32BE(0)
        if (pending.length < total) return
        const packet = pending.subarray(0, total)
        pending = pending.subarray(total)
        const payload = packet.subarray(5, total - packet[4])
        if (payload[0] !== type) {
          client.write(packet)
          continue
        }
        client.write(framed(rewrite(payload)))
        client.write(pending)
        state = 'done'
      }
    })
    const end = (): void => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  })
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r))
  return relay
}

/** An unencrypted SSH packet: length, padding length, payload, padding (at least 4, to a multiple of 8). */
function framed(payload: Buffer): Buffer {
  let padding = 8 - ((5 + payload.length) % 8)
  if (padding < 4) padding += 8
  const head = Buffer.alloc(5)
  head.writeUInt32BE(1 + payload.length + padding)
  head[4] = padding
  return Buffer.concat([head, payload, Buffer.alloc(padding)])
}
