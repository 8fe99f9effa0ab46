import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  CertificateError,
  VALID_FOREVER,
  certificateIdentity,
  principalsText,
  checkHostCertificate,
  checkValidity,
  describeKey,
  parseCertificate,
  parseCertificateText,
  verifyCertificateSignature,
  type SshCertificate
} from '../../src/base/ssh-certificate'
import { CertificateLab, type KeyFiles } from '../helpers/certificates'

let lab: CertificateLab
const newKey = (name: string, type: string, bits?: number): KeyFiles => lab.key(name, type, bits)
const sign = (ca: KeyFiles, key: KeyFiles, args: string[]): string => lab.sign(ca, key, args)
function problem(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof CertificateError) return err.problem
    throw err
  }
  return undefined
}

const NOW = Date.UTC(2026, 11, 2)
let dir: string
let edCa: KeyFiles
let host: KeyFiles
let hostCert: SshCertificate

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'certs-'))
  lab = new CertificateLab(dir)
  edCa = newKey('ca-ed', 'ed25519')
  host = newKey('host', 'ed25519')
  hostCert = parseCertificateText(sign(edCa, host, ['-h', '-I', 'web1 host key', '-z', '42', '-n', 'web1,web1.example.com']))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('parseCertificate', () => {
  test('reads what ssh-keygen -s writes for a host', () => {
    expect(hostCert).toMatchObject({
      certType: 'ssh-ed25519-cert-v01@openssh.com',
      keyType: 'ssh-ed25519',
      kind: 'host',
      keyId: 'web1 host key',
      serial: 42n,
      principals: ['web1', 'web1.example.com'],
      validAfter: 0n,
      validBefore: VALID_FOREVER,
      criticalOptions: [],
      signatureAlgorithm: 'ssh-ed25519'
    })
    expect(hostCert.publicKey.equals(host.blob)).toBe(true)
    expect(hostCert.caKey.equals(edCa.blob)).toBe(true)
    expect(() => checkHostCertificate(hostCert, 'web1', NOW)).not.toThrow()
  })

  test('reads a user certificate with its options and extensions', () => {
    const user = newKey('user', 'ed25519')
    const cert = parseCertificateText(
      sign(edCa, user, [
        '-I',
        'deploy@ci',
        '-n',
        'deploy',
        '-V',
        '20260101:20270101',
        '-O',
        'force-command=/bin/true',
        '-O',
        'source-address=10.0.0.0/8'
      ])
    )
    expect(cert.kind).toBe('user')
    expect(cert.principals).toEqual(['deploy'])
    expect(cert.criticalOptions.map((o) => o.name)).toEqual(['force-command', 'source-address'])
    expect(cert.extensions.map((o) => o.name)).toContain('permit-pty')
    expect(cert.validBefore - cert.validAfter).toBe(365n * 86400n)
    expect(problem(() => checkHostCertificate(cert, 'deploy', NOW))).toBe('wrong-type')
  })

  test.each([
    ['ecdsa', 256],
    ['ecdsa', 384],
    ['ecdsa', 521],
    ['rsa', 2048],
    ['ed25519', undefined]
  ])('verifies a %s-%s CA signature, and refuses it once a byte changes', (type, bits) => {
    const ca = newKey(`ca-${type}-${bits}`, type, bits)
    const key = newKey(`k-${type}-${bits}`, 'ecdsa', 256)
    const cert = parseCertificateText(sign(ca, key, ['-h', '-I', 'x', '-n', 'web1']))
    expect(() => verifyCertificateSignature(cert)).not.toThrow()
    const tampered = Buffer.from(cert.blob)
    tampered[4 + cert.certType.length + 4] ^= 1 // the nonce's first byte: still well formed, no longer what the CA signed
    expect(problem(() => verifyCertificateSignature(parseCertificate(tampered)))).toBe('signature')
  })

  test('rsa-sha2-256 and rsa-sha2-512 signatures verify; ssh-rsa (SHA-1) only with legacy algorithms', () => {
    const ca = newKey('ca-rsa', 'rsa', 2048)
    for (const algo of ['rsa-sha2-256', 'rsa-sha2-512']) {
      const cert = parseCertificateText(sign(ca, host, ['-t', algo, '-h', '-I', 'x', '-n', 'web1']))
      expect(cert.signatureAlgorithm).toBe(algo)
      expect(() => verifyCertificateSignature(cert)).not.toThrow()
    }
    const sha1 = parseCertificateText(sign(ca, host, ['-t', 'ssh-rsa', '-h', '-I', 'x', '-n', 'web1']))
    expect(sha1.signatureAlgorithm).toBe('ssh-rsa')
    expect(problem(() => verifyCertificateSignature(sha1))).toBe('sha1-signature')
    expect(() => verifyCertificateSignature(sha1, true)).not.toThrow()
  })

  test('a signature by another CA than the one named does not verify', () => {
    const other = newKey('ca-other', 'ed25519')
    const forged = Buffer.from(hostCert.blob)
    const otherBlob = other.blob
    forged.set(otherBlob, hostCert.signed.length - otherBlob.length) // same length: an ed25519 key for another
    expect(problem(() => verifyCertificateSignature(parseCertificate(forged)))).toBe('signature')
  })
})

describe('host certificate rules', () => {
  test('expired, not yet valid, and forever-valid', () => {
    const expired = parseCertificateText(sign(edCa, host, ['-h', '-I', 'x', '-n', 'web1', '-V', '20200101:20200102']))
    expect(problem(() => checkHostCertificate(expired, 'web1', NOW))).toBe('expired')
    expect(() => checkValidity(expired, NOW)).toThrow('expired since 2020-01-02')
    const future = parseCertificateText(sign(edCa, host, ['-h', '-I', 'x', '-n', 'web1', '-V', '20300101:20310101']))
    expect(problem(() => checkHostCertificate(future, 'web1', NOW))).toBe('not-yet-valid')
    expect(() => checkValidity(hostCert, Date.UTC(2999, 0, 1))).not.toThrow()
  })

  test('the host name must be a principal; an empty list is refused for hosts', () => {
    expect(problem(() => checkHostCertificate(hostCert, 'web2', NOW))).toBe('principal')
    expect(problem(() => checkHostCertificate(hostCert, 'WEB1', NOW))).toBe('principal')
    const any = parseCertificateText(sign(edCa, host, ['-h', '-I', 'x']))
    expect(any.principals).toEqual([])
    expect(problem(() => checkHostCertificate(any, 'web1', NOW))).toBe('no-principals')
  })

  test('describeKey names the certificate type', () => {
    expect(describeKey(hostCert.blob).type).toBe('ssh-ed25519-cert-v01@openssh.com')
  })
})

describe('hostile bytes', () => {
  test('every truncation is a malformed certificate, never another error', () => {
    for (let n = 0; n < hostCert.blob.length; n++) {
      expect(problem(() => parseCertificate(hostCert.blob.subarray(0, n)))).toBe('malformed')
    }
  })

  test('lengths claiming gigabytes, NUL in a principal, unknown type codes, trailing bytes, oversize', () => {
    const huge = Buffer.from(hostCert.blob)
    huge.writeUInt32BE(0xffffffff, 4 + 'ssh-ed25519-cert-v01@openssh.com'.length) // the nonce's length
    expect(problem(() => parseCertificate(huge))).toBe('malformed')
    expect(problem(() => parseCertificate(Buffer.concat([hostCert.blob, Buffer.from([0])])))).toBe('malformed')
    expect(problem(() => parseCertificate(Buffer.alloc(70_000)))).toBe('malformed')
    const nul = Buffer.from(hostCert.blob)
    nul[nul.indexOf('web1.example')] = 0
    expect(problem(() => parseCertificate(nul))).toBe('malformed')
    const typeAt = hostCert.blob.indexOf(Buffer.from([0, 0, 0, 2, 0, 0, 0, 'web1 host key'.length]))
    const badType = Buffer.from(hostCert.blob)
    badType.writeUInt32BE(3, typeAt)
    expect(problem(() => parseCertificate(badType))).toBe('malformed')
  })

  test('text from a certificate reaches a message quoted, one line, bounded', () => {
    const user = newKey('odd', 'ed25519')
    const cert = parseCertificateText(
      sign(edCa, user, ['-h', '-n', 'web1', '-I', `line\n::error::forged ${'x'.repeat(500)}`, '-O', 'force-command=x'])
    )
    expect(certificateIdentity(cert)).toMatch(/^key id "line\\n::error::forged x+…", serial 0$/)
    expect(certificateIdentity(cert).length).toBeLessThan(230)
    const critical = (): void => checkHostCertificate(cert, 'web1', NOW)
    expect(cert.criticalOptions.map((o) => o.name)).toEqual(['force-command'])
    expect(critical).toThrow('it has critical options a host certificate cannot have ("force-command")')
  })

  test('principals reach the log quoted, one line each escaped, at most 8 listed', () => {
    const user = newKey('many', 'ed25519')
    const names = ['evil\n::error::forged', ...Array.from({ length: 10 }, (_, i) => `p${i}`)]
    const cert = parseCertificateText(sign(edCa, user, ['-n', names.join(',')]))
    expect(principalsText(cert)).toBe('principals "evil\\n::error::forged","p0","p1","p2","p3","p4","p5","p6" (+3 more)')
  })

  test('random bytes and unknown key types end in CertificateError', () => {
    for (let i = 0; i < 300; i++) {
      const bytes = Buffer.from(hostCert.blob)
      for (let j = 0; j < 4; j++) bytes[(Math.random() * bytes.length) | 0] = (Math.random() * 256) | 0
      try {
        verifyCertificateSignature(parseCertificate(bytes))
      } catch (err) {
        expect(err).toBeInstanceOf(CertificateError)
      }
    }
    const dss = Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('ssh-dss-cert-v01@openssh.com'.slice(0, 24))])
    expect(problem(() => parseCertificate(dss))).toMatch(/malformed|unsupported/)
  })

  test('text that is not a certificate line', () => {
    expect(problem(() => parseCertificateText('ssh-ed25519 AAAA'))).toBe('malformed')
    expect(problem(() => parseCertificateText('ssh-ed25519-cert-v01@openssh.com !!!'))).toBe('malformed')
    expect(problem(() => parseCertificateText(`ssh-rsa-cert-v01@openssh.com ${hostCert.blob.toString('base64')}`))).toBe('malformed')
    expect(problem(() => parseCertificateText(`ssh-ed25519-cert-v01@openssh.com ${'A'.repeat(200_000)}`))).toBe('malformed')
  })
})
