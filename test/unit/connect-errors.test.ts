import { describe, expect, test } from 'vitest'
import {
  classifyClose,
  classifyConnectError,
  destination,
  NO_STAGE,
  refusedByHost,
  type ConnectFailure
} from '../../src/ssh/connect-errors'

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

  // The listener closes with our banner unread: the drop reads as an end or as a reset, by timing alone.
  test.each([
    ['an end', err('protocol')],
    ['a reset', err('client-socket', 'ECONNRESET')]
  ])('a drop before the banner after the server wrote text (%s): turned away, named with its words and both causes', (_, drop) => {
    const f = classifyConnectError(drop, 1000, '127.0.0.1:22', {
      ...NO_STAGE,
      connected: true,
      serverText: 'Not allowed at this time\r\n'
    })
    expect(f).toMatchObject({ kind: 'turned-away', transient: true })
    expect(f.message).toBe(
      'the server turned the connection away before its SSH banner to 127.0.0.1:22, saying "Not allowed at this time": ' +
        "sshd MaxStartups or PerSourcePenalties (OpenSSH ≥ 9.8) refuses new connections from this runner's address; " +
        "on the server, add the runner's address to PerSourcePenaltyExemptList (or raise MaxStartups), or lower concurrency"
    )
  })

  test('a timeout once connected is a stalled server (a connection left before login), saying how far it got', () => {
    const stalled = (banner: boolean, kex: boolean) =>
      classifyConnectError(err('client-timeout'), 4000, '127.0.0.1:22', { ...NO_STAGE, connected: true, banner, kex })
    expect(stalled(false, false)).toMatchObject({
      kind: 'stalled',
      transient: true,
      message: 'connection to 127.0.0.1:22 timed out after 4s: the server accepted the connection but sent no SSH banner'
    })
    expect(stalled(true, false).message).toMatch(/did not complete the key exchange$/)
    expect(stalled(true, true).message).toMatch(/did not complete authentication$/)
  })

  test('a DISCONNECT during authentication ends the login: an auth failure naming the offers (MaxAuthTries), not retried', () => {
    const e = Object.assign(new Error('Too many authentication failures'), { code: 2 })
    const during = classifyConnectError(e, 1000, undefined, { ...NO_STAGE, connected: true, banner: true, kex: true, offers: 3 })
    expect(during).toMatchObject({ kind: 'auth', transient: false })
    expect(during.message).toMatch(
      /^authentication failed: the server ended it after 3 offers \(reason 2: Too many authentication failures\).*MaxAuthTries/
    )
    expect(classifyConnectError(e, 1000)).toMatchObject({ kind: 'protocol', transient: false })
  })

  test('a close without error after the key exchange is a refusal; before it, a transient network failure', () => {
    expect(classifyClose({ ...NO_STAGE, connected: true, banner: true, kex: true }, '127.0.0.1:22')).toEqual({
      kind: 'rejected',
      transient: false,
      message:
        'the server closed the connection to 127.0.0.1:22 after the key exchange, before login: it refuses this client (e.g. OpenSSH RefuseConnection, a Match block)'
    })
    expect(classifyClose({ ...NO_STAGE, connected: true }, '127.0.0.1:22')).toMatchObject({ kind: 'network', transient: true })
  })
})

describe('refusedByHost', () => {
  // What makes a host failed rather than unreachable: it answered and said no.
  test.each([
    ['host-key', true],
    ['auth', true],
    ['rejected', true],
    ['turned-away', false],
    ['refused', false],
    ['timeout', false],
    ['stalled', false],
    ['lost-before-handshake', false],
    ['network', false],
    ['protocol', false]
  ] as const)('%s: %s', (kind, refused) => {
    expect(refusedByHost({ kind, transient: false, message: '' } satisfies ConnectFailure)).toBe(refused)
  })
  test('RefuseConnection (a close after the key exchange, before login) is a refusal by the host', () => {
    expect(refusedByHost(classifyClose({ ...NO_STAGE, connected: true, banner: true, kex: true }, '127.0.0.1:22'))).toBe(true)
    expect(refusedByHost(classifyClose({ ...NO_STAGE, connected: true, banner: true }, '127.0.0.1:22'))).toBe(false)
  })
})
