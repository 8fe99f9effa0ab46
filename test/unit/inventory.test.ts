import { describe, expect, test } from 'vitest'
import { parseHosts, parseHostEntry } from '../../src/plan/inventory'

describe('parseHosts', () => {
  test('accepts newline, comma and space separators with per-host user and port', () => {
    const hosts = parseHosts('web1\nalice@web2:2222, db.example.com  10.0.0.5:23', { user: 'deploy', port: 22 })
    expect(hosts.map((h) => [h.name, h.user, h.hostname, h.port, h.index])).toEqual([
      ['web1', 'deploy', 'web1', 22, 0],
      ['alice@web2:2222', 'alice', 'web2', 2222, 1],
      ['db.example.com', 'deploy', 'db.example.com', 22, 2],
      ['10.0.0.5:23', 'deploy', '10.0.0.5', 23, 3]
    ])
  })

  test('reads IPv6 in brackets with and without port, and bare IPv6', () => {
    expect(parseHostEntry('bob@[2001:db8::1]:2200')).toEqual({ user: 'bob', hostname: '2001:db8::1', port: '2200' })
    expect(parseHostEntry('[::1]')).toEqual({ user: undefined, hostname: '::1', port: undefined })
    expect(parseHostEntry('fe80::1')).toEqual({ user: undefined, hostname: 'fe80::1', port: undefined })
  })

  test('uses the port input for hosts without one', () => {
    expect(parseHosts('a', { user: 'u', port: 2022 })[0].port).toBe(2022)
  })

  test.each([
    ['a:0', /port 0 is out of range/],
    ['a:70000', /port 70000 is out of range/],
    ['a:x', /port 'x' is not a number/],
    ['bad_host!', /not a valid name/],
    ['[web1]:22', /only an IPv6 address goes in brackets/],
    ['us%er@a', /invalid user name 'us%er'/],
    ['-x@a', /invalid user name/],
    ['__proto__', /'__proto__' is not a valid name/],
    ['u@__proto__:22', /'__proto__' is not a valid name/]
  ])('refuses %s', (entry, why) => {
    expect(() => parseHosts(entry, { user: 'u', port: 22 })).toThrow(why)
  })

  test('refuses duplicates, also when written differently', () => {
    expect(() => parseHosts('web1 web1', { user: 'u', port: 22 })).toThrow(/'web1' is listed twice/)
    expect(() => parseHosts('u@WEB1:22 web1', { user: 'u', port: 22 })).toThrow(/listed twice \(same as 'u@WEB1:22'\)/)
    expect(parseHosts('a@web1 b@web1 web1:2222', { user: 'u', port: 22 })).toHaveLength(3)
  })

  test('refuses a host without user when username is not set', () => {
    expect(() => parseHosts('alice@a b', { port: 22 })).toThrow(/'b' has no user/)
  })

  test('refuses an empty list', () => {
    expect(() => parseHosts(' \n , ', { user: 'u', port: 22 })).toThrow(/no hosts/)
  })
})
