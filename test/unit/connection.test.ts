import { describe, expect, test } from 'vitest'
import { classifyConnectError } from '../../src/ssh/connection'

const err = (level: string, code?: string, message = 'x'): Error & { level: string; code?: string } => Object.assign(new Error(message), { level, code })

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

  test('loss before the handshake points at MaxStartups and concurrency', () => {
    expect(classifyConnectError(err('protocol'), 1000).message).toMatch(/MaxStartups.*concurrency/)
  })
})
