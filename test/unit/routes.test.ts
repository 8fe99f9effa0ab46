import { afterEach, describe, expect, test, vi } from 'vitest'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getSettings } from '../../src/plan/inputs'
import { knownSecrets } from '../../src/base/secrets'
import { describeRoute, substituteTokens } from '../../src/plan/route'
import type { Host } from '../../src/plan/settings'
import { parseSshConfig } from '../../src/plan/ssh-config'

const host: Host = { name: 'deploy@web1:2222', user: 'deploy', hostname: 'web1', port: 2222, index: 0 }

describe('proxy command tokens', () => {
  test('%h %p %r %n and %% are substituted, quoted for the shell', () => {
    expect(substituteTokens('nc %h %p # %r %n 100%%', host, false)).toBe("nc 'web1' '2222' # 'deploy' 'deploy@web1:2222' 100%")
    expect(substituteTokens('connect %h:%p', { ...host, hostname: "it's" }, false)).toBe(`connect 'it'\\''s':'2222'`)
    expect(substituteTokens('plink %h -P %p', host, true)).toBe('plink "web1" -P "2222"')
    expect(() => substituteTokens('nc %h %x', host, false)).toThrow('unknown token %x in the proxy command (it takes %h, %p, %r, %n, %%)')
  })

  test('routes in words, for dry-run', () => {
    const bastion = { host: { ...host, name: 'jump@a' }, auth: {} }
    expect(describeRoute(host)).toBe('runner → deploy@web1:2222')
    expect(describeRoute({ ...host, route: { via: 'jump', hops: [bastion, { ...bastion, host: { ...host, name: 'jump@b' } }] } })).toBe(
      'runner → jump@a → jump@b → deploy@web1:2222'
    )
    expect(describeRoute({ ...host, route: { via: 'command', command: 'nc %h %p' } })).toBe(
      "runner → proxy command `nc 'web1' '2222'` → deploy@web1:2222"
    )
  })
})

describe('ssh config', () => {
  const config = parseSshConfig(`
Host web-9
  User special
Host web-* !web-8
  HostName %h.internal
  User deploy
  ProxyJump bastion
Host web-*
  Port 2222
  User late
Match user admin
  Port 2200
Host *
  ConnectTimeout 7
  ServerAliveInterval 5
  StrictHostKeyChecking no
  Match exec "touch /tmp/never"
`)

  test('first value wins, patterns with negation, Match user', () => {
    expect(config.resolve('web-1')).toMatchObject({
      hostname: 'web-1.internal',
      user: 'deploy',
      proxyJump: 'bastion',
      port: '2222',
      connectTimeout: '7'
    })
    expect(config.resolve('web-9')).toMatchObject({ user: 'special', hostname: 'web-9.internal' })
    expect(config.resolve('web-8')).toMatchObject({ user: 'late', hostname: undefined, proxyJump: undefined, port: '2222' })
    expect(config.resolve('db', 'admin')).toMatchObject({ port: '2200', user: 'admin' })
    expect(config.resolve('db')).toMatchObject({ port: undefined })
  })

  test('keywords it does not honour are named, Match exec among them (never run)', () => {
    expect(config.warnings).toEqual(
      expect.arrayContaining([
        'ssh-config: StrictHostKeyChecking is not supported by ssh-fleet and was ignored',
        'ssh-config: Match exec is not supported by ssh-fleet and was ignored'
      ])
    )
  })
})

describe('ssh config patterns match in linear time', () => {
  test('Host *a*a*a…b with thousands of stars against a long alias answers within a second', () => {
    const pattern = `${'*a'.repeat(5000)}*b`
    const config = parseSshConfig(`Host ${pattern}\n  Port 2022\nMatch originalhost ${pattern},x user ${pattern}\n  Port 2023\n`)
    const alias = 'a'.repeat(20_000)
    const started = performance.now()
    expect(config.resolve(alias, alias).port).toBeUndefined()
    expect(config.resolve(`${alias}b`).port).toBe('2022')
    expect(performance.now() - started).toBeLessThan(1000)
  })

  test('Match host, originalhost, user and all, negated or not; any other criterion applies to no host', () => {
    const config = parseSshConfig(
      [
        'Host db-*',
        '  HostName 10.0.0.9',
        'Match host 10.0.0.* !user root',
        '  Port 2201',
        'Match originalhost web-1 user deploy',
        '  Port 2202',
        'Match localuser runner host *',
        '  Port 2203',
        'Match all',
        '  Port 2204'
      ].join('\n')
    )
    expect(config.resolve('db-1', 'app').port).toBe('2201')
    expect(config.resolve('db-1', 'root').port).toBe('2204')
    expect(config.resolve('web-1', 'deploy').port).toBe('2202')
    expect(config.resolve('web-1', 'Deploy').port).toBe('2204') // user names are case-sensitive
    expect(config.warnings).toContain('ssh-config: Match localuser is not supported by ssh-fleet and was ignored')
  })
})

describe('settings from an ssh config', () => {
  const withInputs = (inputs: Record<string, string>): void => {
    for (const [k, v] of Object.entries(inputs)) vi.stubEnv(`INPUT_${k.toUpperCase()}`, v)
  }
  afterEach(() => vi.unstubAllEnvs())

  test('aliases resolve; explicit inputs and entries win over the config; ProxyJump hops resolve through it', () => {
    withInputs({
      hosts: 'web-1 root@web-2:2020',
      password: 'x',
      run: 'true',
      'ssh-config':
        'Host web-*\n  HostName 10.0.0.%h\n  User deploy\n  Port 2222\n  ProxyJump jump\n  ConnectTimeout 9\nHost jump\n  HostName 10.9.9.9\n  User hop\n'
    })
    const s = getSettings({})
    expect(s.hosts.map((h) => [h.name, h.user, h.hostname, h.port])).toEqual([
      ['web-1', 'deploy', '10.0.0.web-1', 2222],
      ['root@web-2:2020', 'root', '10.0.0.web-2', 2020]
    ])
    const route = s.hosts[0].route
    expect(route?.via === 'jump' && route.hops.map((h) => [h.host.user, h.host.hostname, h.host.port])).toEqual([['hop', '10.9.9.9', 22]])
    expect(s.hosts[0].overrides?.connectTimeoutMs).toBe(9000)
    withInputs({ 'connect-timeout': '30s', port: '2200', username: 'ops', 'proxy-jump': 'other@10.1.1.1' })
    const explicit = getSettings({})
    expect(explicit.hosts[0]).toMatchObject({ user: 'ops', port: 2200 })
    expect(explicit.hosts[0].overrides?.connectTimeoutMs).toBeUndefined()
    const jump = explicit.hosts[0].route
    expect(jump?.via === 'jump' && jump.hops[0].host.hostname).toBe('10.1.1.1')
  })

  test("an IdentityFile that cannot be read names the file and ssh-config once, not the inner error's input", () => {
    const key = join(mkdtempSync(join(tmpdir(), 'fleet-id-')), 'id_bad')
    writeFileSync(key, 'not a key\n')
    withInputs({ hosts: 'web-1', run: 'true', 'ssh-config': `Host web-1\n  User deploy\n  IdentityFile ${key}\n` })
    expect(() => getSettings({})).toThrow(
      new RegExp(`^Invalid input 'ssh-config': IdentityFile ${key} of web-1: the private key could not be read: (?!Invalid input)`)
    )
  })

  test("an IdentityFile's key is a secret: each of its lines is masked, as the private-key input's are", () => {
    const key = join(mkdtempSync(join(tmpdir(), 'fleet-id-')), 'id_ed25519')
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
    withInputs({ hosts: 'web-1', run: 'true', 'ssh-config': `Host web-1\n  User deploy\n  IdentityFile ${key}\n` })
    getSettings({})
    const body = readFileSync(key, 'utf8').trim().split('\n').slice(1, -1)
    expect(body.length).toBeGreaterThan(0)
    for (const line of body) expect(knownSecrets().has(line), line).toBe(true)
  })

  test('agent: the Windows OpenSSH agent pipe when SSH_AUTH_SOCK is unset, Pageant on request, Windows only', () => {
    withInputs({ hosts: 'u@h', run: 'true', password: 'x', agent: 'pageant' })
    expect(getSettings({}, 'win32').auth.agent).toBe('pageant')
    expect(() => getSettings({}, 'linux')).toThrow("Invalid input 'agent': 'pageant' is for Windows runners (this one is linux)")
    withInputs({ agent: 'auto' })
    // No named pipe here: auto finds no agent rather than one that is not running.
    expect(getSettings({}, 'win32').auth.agent).toBeUndefined()
    expect(getSettings({ SSH_AUTH_SOCK: '/tmp/agent.sock' }, 'win32').auth.agent).toBe('/tmp/agent.sock')
  })
})
