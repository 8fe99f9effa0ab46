import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest'
import { InputError } from '../../src/plan/input-error'
import { getSettings } from '../../src/plan/inputs'
import { CertificateLab, type KeyFiles } from '../helpers/certificates'

// User certificates are checked against their key and the clock before anything connects.
describe('user certificates (certificate, proxy-certificate, ssh-config CertificateFile)', () => {
  let dir: string
  let lab: CertificateLab
  let ca: KeyFiles
  let user: KeyFiles
  let good: string
  const base = (): Record<string, string> => ({
    hosts: 'deploy@web1',
    'private-key': user.privateText,
    run: 'true',
    fingerprint: `SHA256:${'A'.repeat(43)}`
  })
  const withInputs = (inputs: Record<string, string>): void => {
    for (const [k, v] of Object.entries(inputs)) vi.stubEnv(`INPUT_${k.toUpperCase()}`, v)
  }
  const inputError = (inputs: Record<string, string>): InputError => {
    vi.unstubAllEnvs()
    withInputs(inputs)
    try {
      getSettings({})
    } catch (err) {
      if (err instanceof InputError) return err
      throw err
    }
    throw new Error('no input error')
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'user-certs-'))
    lab = new CertificateLab(dir)
    ca = lab.key('ca')
    user = lab.key('user')
    good = lab.sign(ca, user, ['-I', 'deploy-run-7', '-n', 'deploy', '-V', '-5m:+1h'])
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  afterEach(() => vi.unstubAllEnvs())

  test('a certificate for the private key, valid now, goes with it to hosts and bastions', () => {
    withInputs({ ...base(), certificate: good, 'proxy-jump': 'jump@bastion' })
    const s = getSettings({})
    expect(s.auth.certificate).toMatchObject({ origin: 'certificate', cert: { keyId: 'deploy-run-7', principals: ['deploy'] } })
    const route = s.hosts[0].route
    expect(route?.via === 'jump' && route.hops[0].auth.certificate?.cert.keyId).toBe('deploy-run-7')
  })

  test('named before connecting: expired, not yet valid, for another key, a host certificate, unreadable', () => {
    const expired = lab.sign(ca, user, ['-n', 'deploy', '-V', '20200101:20200102'])
    expect(inputError({ ...base(), certificate: expired })).toMatchObject({ input: 'certificate' })
    expect(inputError({ ...base(), certificate: expired }).message).toMatch(
      /certificate is expired since 2020-01-02T00:00:00Z \(valid from 2020-01-01/
    )
    const future = lab.sign(ca, user, ['-n', 'deploy', '-V', '+1d:+2d'])
    expect(inputError({ ...base(), certificate: future }).message).toMatch(/certificate is not valid before 20\d\d-/)
    const other = lab.key('other')
    const foreign = lab.sign(ca, other, ['-n', 'deploy'])
    expect(inputError({ ...base(), certificate: foreign }).message).toContain('for another key than the private key')
    const hostCert = lab.sign(ca, user, ['-h', '-n', 'web1'])
    expect(inputError({ ...base(), certificate: hostCert }).message).toContain('this is a host certificate')
    expect(inputError({ ...base(), certificate: 'ssh-ed25519-cert-v01@openssh.com AAAA' }).message).toContain('could not be read')
    expect(inputError({ hosts: 'deploy@web1', run: 'true', password: 'x', certificate: good }).message).toContain(
      'needs its private key: give private-key, an IdentityFile for the host in ssh-config, or agent'
    )
  })

  test('proxy-certificate: for the bastion only, checked against proxy-private-key, else private-key', () => {
    const bastionKey = lab.key('bastion')
    const bastionCert = lab.sign(ca, bastionKey, ['-n', 'jump'])
    withInputs({ ...base(), 'proxy-jump': 'jump@bastion', 'proxy-private-key': bastionKey.privateText, 'proxy-certificate': bastionCert })
    const s = getSettings({})
    expect(s.auth.certificate).toBeUndefined()
    const route = s.hosts[0].route
    expect(route?.via === 'jump' && route.hops[0].auth.certificate?.origin).toBe('proxy-certificate')
    expect(inputError({ ...base(), 'proxy-jump': 'jump@bastion', 'proxy-certificate': bastionCert })).toMatchObject({
      input: 'proxy-certificate',
      message: expect.stringContaining('for another key')
    })
  })

  test('ssh-config: CertificateFile, else <IdentityFile>-cert.pub, checked as the input is', () => {
    const withCert = lab.key('id-with-cert')
    lab.sign(ca, withCert, ['-n', 'deploy', '-I', 'beside'])
    const named = join(dir, 'named-cert.pub')
    writeFileSync(named, lab.sign(ca, user, ['-n', 'deploy', '-I', 'named']))
    const config = `Host a\n  IdentityFile ${withCert.path}\nHost b\n  IdentityFile ${user.path}\n  CertificateFile ${named}\n`
    withInputs({ hosts: 'deploy@a deploy@b', run: 'true', 'ssh-config': config, fingerprint: `SHA256:${'A'.repeat(43)}` })
    const s = getSettings({})
    expect(s.hosts.map((h) => h.overrides?.auth?.certificate?.cert.keyId)).toEqual(['beside', 'named'])
    expect(s.hosts[1].overrides?.auth?.certificate?.origin).toBe(`ssh-config CertificateFile ${named} of deploy@b`)
    vi.unstubAllEnvs()
    writeFileSync(named, lab.sign(ca, user, ['-n', 'deploy', '-V', '20200101:20200102']))
    withInputs({ hosts: 'deploy@b', run: 'true', 'ssh-config': config, fingerprint: `SHA256:${'A'.repeat(43)}` })
    expect(() => getSettings({})).toThrow(new RegExp(`CertificateFile ${named} of deploy@b: the certificate is expired since`))
  })

  test('the certificate input goes with the IdentityFile of ssh-config when no private-key is given', () => {
    const config = `Host a\n  IdentityFile ${user.path}\n`
    withInputs({ hosts: 'deploy@a', run: 'true', certificate: good, 'ssh-config': config, fingerprint: `SHA256:${'A'.repeat(43)}` })
    const auth = getSettings({}).hosts[0].overrides?.auth
    expect(auth?.certificate).toMatchObject({ origin: 'certificate', cert: { keyId: 'deploy-run-7' } })
    expect(auth?.certificate?.key.getPublicSSH().toString('base64')).toBe(good.split(' ')[1])
    expect(auth?.certificate?.agent).toBeUndefined()
    const other = lab.key('other-identity')
    expect(
      inputError({ hosts: 'deploy@a', run: 'true', certificate: good, 'ssh-config': `Host a\n  IdentityFile ${other.path}\n` })
    ).toMatchObject({
      input: 'certificate',
      message: expect.stringContaining(`with IdentityFile ${other.path} of deploy@a: the certificate is for another key`)
    })
  })

  test("a bastion with its own proxy-private-key is not given the hosts' certificate input, with an ssh config too", () => {
    const bastionKey = lab.key('bastion-own')
    const config = `Host a\n  IdentityFile ${user.path}\n  ProxyJump jump@bastion\n`
    withInputs({
      hosts: 'deploy@a',
      run: 'true',
      certificate: good,
      'proxy-private-key': bastionKey.privateText,
      'ssh-config': config,
      fingerprint: `SHA256:${'A'.repeat(43)}`
    })
    const s = getSettings({})
    const route = s.hosts[0].route
    expect(route?.via === 'jump' && route.hops[0].auth.certificate).toBeUndefined()
    expect(s.hosts[0].overrides?.auth?.certificate?.origin).toBe('certificate')
  })

  test('ssh-config CertificateFiles: tried in order; without a key in memory the agent signs; without any key, skipped with a warning', () => {
    const foreign = join(dir, 'foreign-cert.pub')
    writeFileSync(foreign, lab.sign(ca, lab.key('someone-else'), ['-n', 'deploy', '-I', 'foreign']))
    const mine = join(dir, 'mine-cert.pub')
    writeFileSync(mine, lab.sign(ca, user, ['-n', 'deploy', '-I', 'mine']))
    const pin = `SHA256:${'A'.repeat(43)}`
    // With the IdentityFile: the first file certifies another key, and is skipped for the second.
    withInputs({
      hosts: 'deploy@a',
      run: 'true',
      fingerprint: pin,
      'ssh-config': `Host a\n  IdentityFile ${user.path}\n  CertificateFile ${foreign}\n  CertificateFile ${mine}\n`
    })
    let s = getSettings({})
    expect(s.hosts[0].overrides?.auth?.certificate?.cert.keyId).toBe('mine')
    expect(s.sshConfigWarnings).toContain(
      `ssh-config: CertificateFile ${foreign} of deploy@a was skipped: it certifies another key than ${user.path}`
    )
    // No IdentityFile, an agent: the first certificate goes through the agent, which signs with its key.
    vi.unstubAllEnvs()
    withInputs({ hosts: 'deploy@a', run: 'true', fingerprint: pin, 'ssh-config': `Host a\n  CertificateFile ${mine}\n` })
    s = getSettings({ SSH_AUTH_SOCK: '/tmp/agent.sock' })
    expect(s.hosts[0].overrides?.auth?.certificate).toMatchObject({ agent: true, cert: { keyId: 'mine' } })
    expect(s.hosts[0].overrides?.auth?.certificate?.key.type).toBe('ssh-ed25519-cert-v01@openssh.com')
    // Neither: the run goes on with the password, and the certificate is named in a warning.
    vi.unstubAllEnvs()
    withInputs({ hosts: 'deploy@a', run: 'true', fingerprint: pin, password: 'pw', 'ssh-config': `Host a\n  CertificateFile ${mine}\n` })
    s = getSettings({})
    expect(s.hosts[0].overrides?.auth?.certificate).toBeUndefined()
    expect(s.sshConfigWarnings).toContain(
      `ssh-config: CertificateFile ${mine} of deploy@a was skipped: no private key goes with it (no IdentityFile, private-key or agent)`
    )
  })
})
