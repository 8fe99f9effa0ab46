import { describe, expect, test } from 'vitest'
import { classifyConnectError, destination } from '../../src/ssh/connect-errors'

const err = (level: string, code?: string, message = 'x'): Error & { level: string; code?: string } =>
  Object.assign(new Error(message), { level, code })

describe('classifyConnectError', () => {
  test.each([
    [err('client-authentication'), 'auth', false],
    [err('agent'), 'auth', false],
    [err('client-timeout'), 'timeout', true],
    [err('protocol', undefined, 'Connection lost before handshake'), 'lost-before-handshake', true],
    [err('client-socket', 'ECONNRESET'), 'lost-before-handshake', true],
    [err('client-socket', 'ECONNREFUSED'), 'refused', true],
    [err('client-socket', 'EHOSTUNREACH'), 'network', true],
    [err('client-socket', 'ENOTFOUND'), 'network', false],
    [err('handshake', undefined, 'no matching cipher'), 'protocol', false]
  ])('%s → %s (transient %s)', (e, kind, transient) => {
    expect(classifyConnectError(e, 20_000)).toMatchObject({ kind, transient })
  })

  test('network failures name where the connection went: the address, and the route when taken', () => {
    const host = { name: 'app', user: 'u', hostname: '127.0.0.1', port: 27005, index: 0 }
    expect(classifyConnectError(err('client-socket', 'ECONNREFUSED'), 1000, destination(host, false)).message).toBe(
      'connection refused (ECONNREFUSED) to 127.0.0.1:27005: is sshd listening on that port?'
    )
    const bastion = { host: { ...host, name: 'deploy@jump', hostname: 'jump', port: 22 }, auth: {} }
    const routed = { ...host, hostname: '2001:db8::1', route: { via: 'jump' as const, hops: [bastion, bastion] } }
    expect(classifyConnectError(err('client-timeout'), 5000, destination(routed, true)).message).toBe(
      'connection to [2001:db8::1]:27005 through deploy@jump → deploy@jump timed out after 5s (TCP connect, key exchange or authentication)'
    )
    expect(destination(routed, false)).toBe('[2001:db8::1]:27005')
    expect(classifyConnectError(err('protocol'), 5000, '10.0.0.1:22').message).toMatch(
      /^connection lost before handshake to 10\.0\.0\.1:22: .*MaxStartups/
    )
  })

  test('loss before the handshake points at MaxStartups and concurrency', () => {
    expect(classifyConnectError(err('protocol'), 1000).message).toMatch(/MaxStartups.*concurrency/)
  })
})
