import { describe, expect, test } from 'vitest'
import { HandshakeGate, HandshakeGates } from '../../src/ssh/handshake-gate'

describe('HandshakeGate', () => {
  test('admits up to the cap at once and queues the rest in order', async () => {
    const gate = new HandshakeGate(2)
    const order: number[] = []
    await gate.acquire()
    await gate.acquire()
    const third = gate.acquire().then(() => order.push(3))
    const fourth = gate.acquire().then(() => order.push(4))
    await Promise.resolve()
    expect(order).toEqual([])
    gate.release('other')
    await third
    expect(order).toEqual([3])
    gate.release('other')
    await fourth
    expect(order).toEqual([3, 4])
  })

  test('halves on throttling down to 1, and grows back by one per cap of successes', () => {
    const gate = new HandshakeGate(8)
    const cycle = (outcome: 'ok' | 'throttled'): void => {
      void gate.acquire()
      gate.release(outcome)
    }
    cycle('throttled')
    expect(gate.cap).toBe(4)
    cycle('throttled')
    cycle('throttled')
    cycle('throttled')
    expect(gate.cap).toBe(1)
    cycle('ok')
    expect(gate.cap).toBe(2)
    cycle('ok')
    expect(gate.cap).toBe(2)
    cycle('ok')
    expect(gate.cap).toBe(3)
    for (let i = 0; i < 100; i++) cycle('ok')
    expect(gate.cap).toBe(8)
  })

  test('a throttled server holds back queued handshakes until slots free under the new cap', async () => {
    const gate = new HandshakeGate(4)
    for (let i = 0; i < 4; i++) await gate.acquire()
    let admitted = 0
    const queued = Array.from({ length: 4 }, () => gate.acquire().then(() => admitted++))
    gate.release('throttled') // cap 2, 3 still active
    gate.release('throttled') // cap 1, 2 active
    await Promise.resolve()
    expect(admitted).toBe(0)
    gate.release('other') // 1 active: still at cap
    await Promise.resolve()
    expect(admitted).toBe(0)
    gate.release('other') // 0 active: one may go
    await Promise.resolve()
    await Promise.resolve()
    expect(admitted).toBe(1)
    void queued
  })

  test('gates are per address', () => {
    const gates = new HandshakeGates(4)
    expect(gates.for('a')).toBe(gates.for('a'))
    expect(gates.for('a')).not.toBe(gates.for('b'))
  })
})
