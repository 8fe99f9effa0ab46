import { createHmac, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { describeKey, parseFingerprints, parseKnownHosts, type HostKeyPolicy } from '../../src/plan/known-hosts'
import { hostKeyAlgorithms, verifyHostKey } from '../../src/ssh/host-keys'
import { CertificateLab, type KeyFiles } from '../helpers/certificates'

/** A syntactically valid ssh-ed25519 public key blob. */
function edKey(): Buffer {
  const type = Buffer.from('ssh-ed25519')
  const body = randomBytes(32)
  const buf = Buffer.alloc(4 + type.length + 4 + body.length)
  buf.writeUInt32BE(type.length, 0)
  type.copy(buf, 4)
  buf.writeUInt32BE(body.length, 4 + type.length)
  body.copy(buf, 8 + type.length)
  return buf
}
const line = (hosts: string, key: Buffer, marker = ''): string =>
  `${marker}${marker ? ' ' : ''}${hosts} ssh-ed25519 ${key.toString('base64')}`
const hashed = (name: string): string => {
  const salt = randomBytes(20)
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}
const policy = (knownHosts: string, fingerprints = '', mode: 'strict' | 'off' = 'strict'): HostKeyPolicy => ({
  mode,
  knownHosts: parseKnownHosts(knownHosts, 'known-hosts', true),
  fingerprints: parseFingerprints(fingerprints)
})
const web = { name: 'deploy@web1', hostname: 'web1', port: 22 }
const web2222 = { name: 'web1:2222', hostname: 'web1', port: 2222 }

const reason = (v: ReturnType<typeof verifyHostKey>): string => (v.accepted ? `accepted: ${v.via}` : v.reason)

describe('verifyHostKey', () => {
  const key = edKey()
  const other = edKey()

  test('accepts a plain name on port 22 and refuses another key for it', () => {
    expect(verifyHostKey(policy(line('web1', key)), web, key)).toMatchObject({
      accepted: true,
      via: `host key ssh-ed25519 ${describeKey(key).fingerprint} accepted by known-hosts line 1`
    })
    const refused = verifyHostKey(policy(line('web1', key)), web, other)
    expect(refused).toMatchObject({ accepted: false })
    expect(refused.accepted === false && refused.reason).toContain(describeKey(other).fingerprint)
    expect(refused.accepted === false && refused.reason).toContain('does not match the key known for web1')
  })

  test('other ports: [host]:port first, then the bare name where no plain line for [host]:port names a key (OpenSSH)', () => {
    expect(verifyHostKey(policy(line('[web1]:2222', key)), web2222, key).accepted).toBe(true)
    expect(reason(verifyHostKey(policy(line('web1', key)), web2222, key))).toContain(
      'accepted by known-hosts line 1 (for web1, without the port)'
    )
    // A [host]:port line with another key: the key changed there, and the bare name is not asked.
    const changed = verifyHostKey(policy(`${line('[web1]:2222', other)}\n${line('web1', key)}`), web2222, key)
    expect(reason(changed)).toContain('does not match the key known for [web1]:2222')
    // Neither with HostKeyAlias (OpenSSH looks up only the alias), nor a bare-name line for another key.
    expect(verifyHostKey(policy(line('web1', key)), { ...web2222, hostKeyAlias: 'alias1' }, key).accepted).toBe(false)
    expect(reason(verifyHostKey(policy(line('web1', other)), web2222, key))).toContain(
      'no known-hosts line or fingerprint for [web1]:2222 or web1'
    )
    expect(verifyHostKey(policy(line('web1', key, '@revoked')), web2222, key).accepted).toBe(false)
  })

  test('matches hashed names, including [host]:port', () => {
    expect(verifyHostKey(policy(line(hashed('web1'), key)), web, key).accepted).toBe(true)
    expect(verifyHostKey(policy(line(hashed('[web1]:2222'), key)), web2222, key).accepted).toBe(true)
    expect(verifyHostKey(policy(line(hashed('web2'), key)), web, key).accepted).toBe(false)
  })

  test('a backtracking pattern against a long name answers at once (linear matching, not a RegExp)', () => {
    const evil = `${'*a'.repeat(30)}*b`
    const long = { name: 'long', hostname: 'a'.repeat(5000), port: 22 }
    const started = performance.now()
    const verdict = verifyHostKey(policy(`${line(evil, other)}\n${line(`*a*,${evil}`, key)}`), long, key)
    expect(performance.now() - started).toBeLessThan(1000)
    expect(verdict).toMatchObject({ accepted: true, via: expect.stringContaining('known-hosts line 2') })
    expect(verifyHostKey(policy(line(`${'*a'.repeat(30)}*`, key)), long, key).accepted).toBe(true)
  })

  test('matches * and ? patterns, with negation', () => {
    expect(verifyHostKey(policy(line('web?,db*', key)), web, key).accepted).toBe(true)
    expect(verifyHostKey(policy(line('*,!web1', key)), web, key).accepted).toBe(false)
    expect(verifyHostKey(policy(line('*.example.com', key)), web, key).accepted).toBe(false)
  })

  test('refuses a @revoked key even when a fingerprint accepts it', () => {
    const fp = describeKey(key).fingerprint
    const verdict = verifyHostKey(policy(`${line('*', key, '@revoked')}\n${line('web1', key)}`, fp), web, key)
    expect(verdict).toMatchObject({ accepted: false })
    expect(verdict.accepted === false && verdict.reason).toMatch(/@revoked \(known-hosts line 1\)/)
  })

  test('accepts pinned fingerprints, for all hosts or the named one', () => {
    const fp = describeKey(key).fingerprint
    expect(verifyHostKey(policy('', fp), web, key)).toMatchObject({
      accepted: true,
      via: `host key ssh-ed25519 ${fp} accepted by fingerprint pin`
    })
    expect(verifyHostKey(policy('', `web1=${fp}`), web, key).accepted).toBe(true)
    expect(verifyHostKey(policy('', `deploy@web1=${fp}`), web, key).accepted).toBe(true)
    expect(verifyHostKey(policy('', `web2=${fp}`), web, key).accepted).toBe(false)
    expect(verifyHostKey(policy('', describeKey(other).fingerprint), web, key).accepted).toBe(false)
  })

  test('an unknown key is refused with its type, fingerprint and how to pin it', () => {
    const verdict = verifyHostKey(policy(''), web2222, key)
    expect(verdict.accepted).toBe(false)
    const reason = verdict.accepted === false ? verdict.reason : ''
    expect(reason).toContain(`ssh-ed25519 ${describeKey(key).fingerprint} is not known`)
    expect(reason).toContain(`'web1:2222=${describeKey(key).fingerprint}'`)
    expect(reason).toContain('ssh-keyscan -p 2222 web1')
  })

  test('off accepts any key but still refuses a revoked one', () => {
    expect(verifyHostKey(policy('', '', 'off'), web, key).accepted).toBe(true)
    expect(verifyHostKey(policy(line('*', key, '@revoked'), '', 'off'), web, key).accepted).toBe(false)
  })
})

describe('parsing', () => {
  test('describeKey reads the type and SHA256 like ssh-keygen', () => {
    const key = edKey()
    const d = describeKey(key)
    expect(d.type).toBe('ssh-ed25519')
    expect(d.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/)
  })

  test('strict known-hosts parsing names the bad line; lenient parsing skips it', () => {
    const key = edKey()
    const text = `# comment\n\n${line('web1', key)}\nweb2 ssh-ed25519\nweb3 ssh-rsa ${key.toString('base64')}`
    expect(() => parseKnownHosts(text, 'known-hosts', true)).toThrow(/known-hosts line 4: expected/)
    expect(() => parseKnownHosts(`${line('web1', key)}\n@bogus ${line('a', key)}`, 'known-hosts', true)).toThrow(
      /line 2: unknown marker '@bogus'/
    )
    expect(() => parseKnownHosts(`web3 ssh-rsa ${key.toString('base64')}`, 'known-hosts', true)).toThrow(/not a ssh-rsa key/)
    expect(parseKnownHosts(text, '~/.ssh/known_hosts', false)).toHaveLength(1)
  })

  test('a @cert-authority line vouches for no plain key, and a refusal names it for the hosts it covers', () => {
    const key = edKey()
    const p = policy(`${line('*.example', key, '@cert-authority')}\n${line('db1', edKey())}`)
    const refused = verifyHostKey(p, { name: 'web1.example', hostname: 'web1.example', port: 22 }, key)
    expect(refused.accepted === false && refused.reason).toContain(
      'known-hosts line 1 is a @cert-authority line for it, and a CA vouches only for a certificate'
    )
    const other = verifyHostKey(p, web, key)
    expect(other.accepted === false && other.reason).toContain('is not known (no known-hosts line or fingerprint for web1)')
  })

  test('fingerprint lines must be SHA256', () => {
    expect(() => parseFingerprints('MD5:aa:bb')).toThrow(/line 1: expected SHA256/)
    expect(() => parseFingerprints('SHA256:short')).toThrow(/line 1/)
  })

  test('a host written in capitals matches its hashed line, as OpenSSH lowercases first', () => {
    const key = edKey()
    expect(verifyHostKey(policy(line(hashed('web1'), key)), { name: 'WEB1', hostname: 'WEB1', port: 22 }, key).accepted).toBe(true)
    expect(verifyHostKey(policy(line(hashed('[web1]:2222'), key)), { name: 'Web1:2222', hostname: 'Web1', port: 2222 }, key).accepted).toBe(
      true
    )
  })

  test("the host key algorithms of a host's known keys are asked for first", () => {
    const key = edKey()
    const rsa = `web1 ssh-rsa ${Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('ssh-rsa'), Buffer.from([0, 0, 0, 1, 3, 0, 0, 0, 1, 1])]).toString('base64')}`
    expect(hostKeyAlgorithms(policy(rsa), web)?.slice(0, 4)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519'])
    expect(hostKeyAlgorithms(policy(line('web1', key)), web)?.[0]).toBe('ssh-ed25519')
    expect(hostKeyAlgorithms(policy(line('other', key)), web)?.[0]).toBe('ssh-ed25519') // ssh2's own order
    // Off port 22 the bare name's lines count where no plain line names [host]:port.
    expect(hostKeyAlgorithms(policy(rsa), web2222)?.[0]).toBe('rsa-sha2-512')
    expect(hostKeyAlgorithms(policy(`${line('[web1]:2222', key)}\n${rsa}`), web2222)?.[0]).toBe('ssh-ed25519')
  })
})

describe('host certificates (@cert-authority)', () => {
  let dir: string
  let lab: CertificateLab
  let ca: KeyFiles
  let hostKey: KeyFiles
  const NOW = Date.UTC(2026, 11, 2)
  const caLine = (patterns: string, key: KeyFiles = ca, marker = '@cert-authority'): string =>
    `${marker} ${patterns} ${key.publicLine.split(' ').slice(0, 2).join(' ')}`
  const certBlob = (text: string): Buffer => Buffer.from(text.split(' ')[1], 'base64')
  const app = { name: 'app1.prod.example', hostname: 'app1.prod.example', port: 22 }
  let good: Buffer

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'host-certs-'))
    lab = new CertificateLab(dir)
    ca = lab.key('ca')
    hostKey = lab.key('host')
    good = certBlob(lab.sign(ca, hostKey, ['-h', '-I', 'app1 host', '-z', '7', '-n', 'app1.prod.example,app1']))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  test('a CA line whose patterns match the host accepts its certificate, and says what accepted it', () => {
    const verdict = verifyHostKey(policy(caLine('*.prod.example')), app, good, { nowMs: NOW })
    expect(verdict.accepted).toBe(true)
    const via = reason(verdict)
    expect(via).toContain(`host key ssh-ed25519 ${describeKey(hostKey.blob).fingerprint} accepted`)
    expect(via).toContain(`certificate signed by CA ssh-ed25519 ${describeKey(ca.blob).fingerprint} (known-hosts line 1)`)
    expect(via).toContain('key id "app1 host", serial 7')
  })

  test('patterns as OpenSSH reads them: [host]:port, else the bare name, off port 22; negation, another CA', () => {
    const onPort = { ...app, name: 'app1.prod.example:2222', port: 2222 }
    // OpenSSH retries a certificate no CA line for [host]:port accepts under the bare name (sshconnect.c).
    expect(reason(verifyHostKey(policy(caLine('*.prod.example')), onPort, good, { nowMs: NOW }))).toMatch(
      /^accepted: .*certificate signed by CA ssh-ed25519/
    )
    expect(verifyHostKey(policy(caLine('[*.prod.example]:2222')), onPort, good, { nowMs: NOW }).accepted).toBe(true)
    const otherCa = lab.key('port-ca')
    const both = policy(`${caLine('[*.prod.example]:2222', otherCa)}\n${caLine('app1.prod.example')}`)
    expect(verifyHostKey(both, onPort, good, { nowMs: NOW }).accepted).toBe(true)
    expect(verifyHostKey(policy(caLine('app1.prod.example')), { ...onPort, hostKeyAlias: 'app9' }, good, { nowMs: NOW }).accepted).toBe(
      false
    )
    const negated = verifyHostKey(policy(caLine('*.prod.example,!app1.prod.example')), app, good, { nowMs: NOW })
    expect(reason(negated)).toContain('no @cert-authority line for app1.prod.example names that CA')
    const other = verifyHostKey(policy(caLine('*', lab.key('other-ca'))), app, good, { nowMs: NOW })
    expect(other.accepted).toBe(false)
  })

  test('refused: a name not among the principals, an expired certificate, a user certificate, no principals', () => {
    const p = policy(caLine('*'))
    expect(reason(verifyHostKey(p, { ...app, hostname: 'app2.prod.example' }, good, { nowMs: NOW }))).toContain(
      'refused: principal app2.prod.example not listed'
    )
    const expired = certBlob(lab.sign(ca, hostKey, ['-h', '-n', 'app1.prod.example', '-V', '20200101:20200102']))
    expect(reason(verifyHostKey(p, app, expired, { nowMs: NOW }))).toContain('refused: expired since 2020-01-02')
    const user = certBlob(lab.sign(ca, hostKey, ['-n', 'app1.prod.example']))
    expect(reason(verifyHostKey(p, app, user, { nowMs: NOW }))).toContain('refused: not a host certificate')
    const anyName = certBlob(lab.sign(ca, hostKey, ['-h']))
    expect(reason(verifyHostKey(p, app, anyName, { nowMs: NOW }))).toContain('lists no principals')
  })

  test('refused when the CA or the host key is @revoked, even where a plain line or a pin names the key', () => {
    const plain = `app1.prod.example ${hostKey.publicLine.split(' ').slice(0, 2).join(' ')}`
    const revokedCa = verifyHostKey(policy(`${caLine('*')}\n${caLine('*', ca, '@revoked')}\n${plain}`), app, good, { nowMs: NOW })
    expect(reason(revokedCa)).toContain(`host certificate signed by revoked CA ssh-ed25519 ${describeKey(ca.blob).fingerprint}`)
    const revokedKey = verifyHostKey(policy(`${caLine('*')}\n${caLine('*', hostKey, '@revoked')}`), app, good, { nowMs: NOW })
    expect(reason(revokedKey)).toContain('host certificate for revoked host key')
  })

  test('a @revoked line holding a certificate revokes the key it certifies, as a certificate or a plain key', () => {
    const revokedCert = `@revoked * ${lab.sign(ca, hostKey, ['-h', '-n', 'old']).split(' ').slice(0, 2).join(' ')}`
    expect(reason(verifyHostKey(policy(`${caLine('*')}\n${revokedCert}`), app, good, { nowMs: NOW }))).toContain(
      'host certificate for revoked host key'
    )
    const plain = `app1.prod.example ${hostKey.publicLine.split(' ').slice(0, 2).join(' ')}`
    expect(reason(verifyHostKey(policy(`${plain}\n${revokedCert}`), app, hostKey.blob))).toContain(
      'is marked @revoked (known-hosts line 2)'
    )
  })

  test('HostKeyAlias: the alias is the name looked up and the principal required', () => {
    const aliased = { name: 'app1', hostname: '10.0.0.5', port: 2222, hostKeyAlias: 'app1' }
    expect(verifyHostKey(policy(caLine('app1')), aliased, good, { nowMs: NOW }).accepted).toBe(true)
    expect(reason(verifyHostKey(policy(caLine('*')), { ...aliased, hostKeyAlias: 'app9' }, good, { nowMs: NOW }))).toContain(
      'principal app9 not listed'
    )
  })

  test('the plain key is still accepted where a plain line or a pin names it, and the log says why the certificate was not', () => {
    const expired = certBlob(lab.sign(ca, hostKey, ['-h', '-n', 'app1.prod.example', '-V', '20200101:20200102']))
    const plain = `app1.prod.example ${hostKey.publicLine.split(' ').slice(0, 2).join(' ')}`
    const byLine = verifyHostKey(policy(`${caLine('*')}\n${plain}`), app, expired, { nowMs: NOW })
    expect(reason(byLine)).toMatch(/^accepted: host key ssh-ed25519 \S+ accepted by known-hosts line 2 \(.*expired since 2020-01-02/)
    const byPin = verifyHostKey(policy('', describeKey(hostKey.blob).fingerprint), app, good, { nowMs: NOW })
    expect(reason(byPin)).toMatch(/accepted by fingerprint pin \(.*no @cert-authority line/)
  })

  test('a CA signing with ssh-rsa (SHA-1) passes only with legacy algorithms', () => {
    const rsaCa = lab.key('rsa-ca', 'rsa', 2048)
    const sha1 = certBlob(lab.sign(rsaCa, hostKey, ['-t', 'ssh-rsa', '-h', '-n', 'app1.prod.example']))
    expect(reason(verifyHostKey(policy(caLine('*', rsaCa)), app, sha1, { nowMs: NOW }))).toContain('ssh-rsa (SHA-1)')
    expect(verifyHostKey(policy(caLine('*', rsaCa)), app, sha1, { nowMs: NOW, legacy: true }).accepted).toBe(true)
  })

  test('certificates are asked for first, and only, where a @cert-authority line covers the host', () => {
    const asked = hostKeyAlgorithms(policy(caLine('*.prod.example')), app)
    expect(asked.slice(0, 2)).toEqual(['ssh-ed25519-cert-v01@openssh.com', 'ecdsa-sha2-nistp256-cert-v01@openssh.com'])
    expect(asked).not.toContain('ssh-rsa-cert-v01@openssh.com')
    expect(hostKeyAlgorithms(policy(caLine('*.prod.example')), web).some((a) => a.includes('-cert-'))).toBe(false)
    // A CA line without a port covers the host on any port, as OpenSSH's retry without the port does.
    expect(hostKeyAlgorithms(policy(caLine('app1.prod.example')), { ...app, port: 2222 })[0]).toBe('ssh-ed25519-cert-v01@openssh.com')
    expect(hostKeyAlgorithms(policy(caLine('*.prod.example', ca, '@revoked')), app).some((a) => a.includes('-cert-'))).toBe(false)
  })

  test('an unreadable certificate is refused, not thrown', () => {
    const broken = Buffer.from(good.subarray(0, 60))
    expect(reason(verifyHostKey(policy(caLine('*')), app, broken, { nowMs: NOW }))).toMatch(/certificate SHA256:\S+ could not be read/)
  })
})
