import { describe, expect, test } from 'vitest'
import { HandshakeGate, HandshakeGates, PAUSE_TOTAL_MS, PAUSES_MS, START_CAP, type HandshakeOutcome } from '../../src/ssh/handshake-gate'
import type { Auth, Host } from '../../src/plan/settings'

/** A sleep the test ends by hand, recording what was asked. */
function manualSleep(): { sleep: (ms: number) => Promise<void>; asked: number[]; wake: () => void } {
  const pending: Array<() => void> = []
  const asked: number[] = []
  return {
    asked,
    sleep: (ms) => {
      asked.push(ms)
      return new Promise((resolve) => pending.push(resolve))
    },
    wake: () => pending.splice(0).forEach((r) => r())
  }
}

const ticks = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

/** One handshake start to end. */
async function cycle(gate: HandshakeGate, outcome: HandshakeOutcome): Promise<boolean> {
  return gate.release(await gate.acquire(), outcome)
}

describe('HandshakeGate', () => {
  test('admits up to the cap at once and queues the rest in order', async () => {
    const gate = new HandshakeGate({ max: 2 })
    const order: number[] = []
    const first = await gate.acquire()
    const second = await gate.acquire()
    const third = gate.acquire().then((t) => (order.push(3), t))
    const fourth = gate.acquire().then((t) => (order.push(4), t))
    await ticks()
    expect(order).toEqual([])
    gate.release(first, 'other')
    gate.release(await third, 'other')
    gate.release(second, 'other')
    await fourth
    expect(order).toEqual([3, 4])
  })

  test("starts at sshd's MaxStartups threshold, not at concurrency, and grows by one per success until congestion", async () => {
    const gate = new HandshakeGate({ max: 64 })
    expect(gate.cap).toBe(START_CAP)
    for (let i = 0; i < 20; i++) await cycle(gate, 'ok')
    expect(gate.cap).toBe(30)
    for (let i = 0; i < 100; i++) await cycle(gate, 'ok')
    expect(gate.cap).toBe(64)
    expect(new HandshakeGate({ max: 4 }).cap).toBe(4)
  })

  test('congestion (a drop before the banner, a connection left before login) halves it; then it grows by one per cap of successes', async () => {
    const gate = new HandshakeGate({ max: 64 })
    await cycle(gate, 'congested')
    expect(gate.cap).toBe(5)
    for (let i = 0; i < 3; i++) await cycle(gate, 'congested')
    expect(gate.cap).toBe(1)
    await cycle(gate, 'ok')
    expect(gate.cap).toBe(2)
    await cycle(gate, 'ok')
    expect(gate.cap).toBe(2)
    await cycle(gate, 'ok')
    expect(gate.cap).toBe(3)
    await cycle(gate, 'other')
    expect(gate.cap).toBe(3)
  })

  test('a throttled server holds back queued handshakes until slots free under the new cap', async () => {
    const gate = new HandshakeGate({ max: 4 })
    const tickets = await Promise.all(Array.from({ length: 4 }, () => gate.acquire()))
    let admitted = 0
    const queued = Array.from({ length: 4 }, () => gate.acquire().then(() => admitted++))
    gate.release(tickets[0], 'congested') // cap 2, 3 still active
    gate.release(tickets[1], 'congested') // cap 1, 2 active
    await ticks()
    expect(admitted).toBe(0)
    gate.release(tickets[2], 'other') // 1 active: still at cap
    await ticks()
    expect(admitted).toBe(0)
    gate.release(tickets[3], 'other') // 0 active: one may go
    await ticks()
    expect(admitted).toBe(1)
    void queued
  })

  test('turned away among others: halved, not paused', async () => {
    const { sleep, asked } = manualSleep()
    const gate = new HandshakeGate({ max: 8, sleep })
    const [a, b] = await Promise.all([gate.acquire(), gate.acquire()])
    expect(a.alone).toBe(true)
    expect(b.alone).toBe(false)
    expect(gate.release(b, 'turned-away')).toBe(false)
    expect(gate.cap).toBe(4)
    expect(gate.paused).toBe(false)
    expect(asked).toEqual([])
    gate.release(a, 'other')
  })

  test('a lone handshake turned away pauses the address; then one probe; pauses escalate and end on success', async () => {
    const { sleep, asked, wake } = manualSleep()
    const paused: number[] = []
    const gate = new HandshakeGate({ max: 8, sleep, onPause: (ms) => paused.push(ms) })
    expect(await cycle(gate, 'turned-away')).toBe(true)
    expect(gate.paused).toBe(true)
    expect(asked).toEqual([PAUSES_MS[0]])
    expect(paused).toEqual([PAUSES_MS[0]])
    // Nobody is admitted while paused.
    let admitted = 0
    const waiting = Array.from({ length: 3 }, () => gate.acquire().then((t) => (admitted++, t)))
    await ticks()
    expect(admitted).toBe(0)
    wake()
    await ticks()
    expect(admitted).toBe(1) // the probe, alone
    const probe = await waiting[0]
    expect(probe.alone).toBe(true)
    expect(gate.release(probe, 'turned-away')).toBe(true)
    expect(asked).toEqual([PAUSES_MS[0], PAUSES_MS[1]])
    wake()
    await ticks()
    expect(admitted).toBe(2)
    expect(gate.release(await waiting[1], 'ok')).toBe(false)
    await ticks()
    expect(admitted).toBe(3)
    gate.release(await waiting[2], 'ok')
    // A success ends the escalation: the next pause is the first again.
    await cycle(gate, 'ok')
    await cycle(gate, 'turned-away')
    expect(asked.at(-1)).toBe(PAUSES_MS[0])
    wake()
  })

  test('a handshake of the same burst turned away while paused does not pause again, and is not a spent retry', async () => {
    const { sleep, asked, wake } = manualSleep()
    const gate = new HandshakeGate({ max: 8, sleep })
    const [lone, other] = await Promise.all([gate.acquire(), gate.acquire()])
    expect(gate.release(lone, 'turned-away')).toBe(true)
    expect(gate.release(other, 'turned-away')).toBe(true)
    expect(asked).toHaveLength(1)
    wake()
  })

  test('a handshake dropped without a word while the address is paused waits for the pause, not a spent retry', async () => {
    const { sleep, wake } = manualSleep()
    const gate = new HandshakeGate({ max: 8, sleep })
    const [lone, other, late] = await Promise.all([gate.acquire(), gate.acquire(), gate.acquire()])
    expect(gate.release(lone, 'turned-away')).toBe(true)
    expect(gate.release(other, 'congested')).toBe(true)
    // Not a refusal of the address: spent as it would be, paused or not.
    expect(gate.release(late, 'other')).toBe(false)
    wake()
    await ticks()
    // Unpaused, a drop is congestion, and the host's retry to spend.
    expect(await cycle(gate, 'congested')).toBe(false)
  })

  test('pauses are bounded by a total; past it, turned-away attempts are spent retries again', async () => {
    const { sleep, asked, wake } = manualSleep()
    const gate = new HandshakeGate({ max: 8, sleep })
    let paused = true
    while (paused) {
      paused = await cycle(gate, 'turned-away')
      wake()
      await ticks()
    }
    expect(asked.reduce((a, b) => a + b, 0)).toBe(PAUSE_TOTAL_MS)
    expect(Math.max(...asked)).toBe(PAUSES_MS.at(-1))
    expect(await cycle(gate, 'turned-away')).toBe(false)
  })

  test("the job's cancel ends a pause at once", async () => {
    const cancel = new AbortController()
    const gate = new HandshakeGate({ max: 8, sleep: () => new Promise(() => {}), signal: cancel.signal })
    await cycle(gate, 'turned-away')
    const next = gate.acquire()
    cancel.abort()
    await next
    expect(gate.paused).toBe(false)
  })

  test('gates are per address, each told its pauses under its address', async () => {
    const told: string[] = []
    const gates = new HandshakeGates({
      max: 4,
      sleep: () => new Promise(() => {}),
      onPause: (address, ms, why) => told.push(`${address} ${ms} ${why}`)
    })
    expect(gates.for('a')).toBe(gates.for('a'))
    expect(gates.for('a')).not.toBe(gates.for('b'))
    gates.for('b').release(await gates.for('b').acquire(), 'turned-away', 'said no')
    expect(told).toEqual([`b ${PAUSES_MS[0]} said no`])
    expect(gates.for('a').paused).toBe(false)
  })
})

describe('HandshakeGates: keyed by what the server sees', () => {
  /** A resolver of a few names, counting what it was asked; any other name does not resolve. */
  function resolver(): { resolve: (name: string) => Promise<string>; asked: string[] } {
    const table: Record<string, string> = { 'web1.example.com': '10.0.0.5', web1: '10.0.0.5', '10.0.0.5': '10.0.0.5', bastion: '192.0.2.1' }
    const asked: string[] = []
    return {
      asked,
      resolve: async (name) => {
        asked.push(name)
        if (name in table) return table[name]
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' })
      }
    }
  }
  const auth: Auth = {}
  const host = (hostname: string, port = 22, route?: Host['route']): Host => ({
    name: `${hostname}:${port}`,
    user: 'deploy',
    hostname,
    port,
    index: 0,
    ...(route ? { route } : {})
  })
  const jump = (...names: string[]): Host['route'] => ({ via: 'jump', hops: names.map((n) => ({ host: host(n), auth })) })

  test('two names (and two ports) of one address share one gate; the resolver is asked once per name', async () => {
    const { resolve, asked } = resolver()
    const gates = new HandshakeGates({ max: 4, resolve })
    const gate = await gates.forHost(host('web1.example.com'))
    expect(await gates.forHost(host('WEB1', 2222))).toBe(gate)
    expect(await gates.forHost(host('10.0.0.5', 2201))).toBe(gate)
    expect(await gates.serverKey(host('web1'))).toBe('10.0.0.5')
    expect(await gates.forHost(host('web2'))).not.toBe(gate)
    expect(asked.sort()).toEqual(['10.0.0.5', 'web1', 'web1.example.com', 'web2'])
  })

  test('a name that does not resolve is keyed as written', async () => {
    const gates = new HandshakeGates({ max: 4, resolve: resolver().resolve })
    expect(await gates.serverKey(host('Nowhere.example'))).toBe('nowhere.example')
  })

  test('behind a bastion the target sees the bastion: its hosts on one target share a gate, apart from the direct one', async () => {
    const { resolve } = resolver()
    const gates = new HandshakeGates({ max: 4, resolve })
    const via = await gates.forHost(host('127.0.0.1', 2201, jump('bastion')))
    // The first hop is dialled by the runner, so its name is resolved; the target is the bastion's to resolve.
    expect(await gates.forHost(host('127.0.0.1', 2202, jump('192.0.2.1')))).toBe(via)
    expect(await gates.serverKey(host('127.0.0.1', 2201, jump('bastion')))).toBe('127.0.0.1 through 192.0.2.1')
    expect(await gates.forHost(host('127.0.0.1', 2201))).not.toBe(via)
    expect(await gates.forHost(host('127.0.0.1', 2201, jump('web1')))).not.toBe(via)
    // In a chain the target sees the last hop, which the hop before it dials by its name.
    expect(await gates.serverKey(host('db', 22, jump('bastion', 'Inner')))).toBe('db through inner')
    expect(await gates.forHost(host('db', 22, jump('web1', 'inner')))).toBe(await gates.forHost(host('db', 22, jump('bastion', 'inner'))))
  })

  test('through a proxy command: keyed by the command and the target as written', async () => {
    const gates = new HandshakeGates({ max: 4, resolve: resolver().resolve })
    const route: Host['route'] = { via: 'command', command: 'ssh -W %h:%p gw' }
    expect(await gates.serverKey(host('web1', 22, route))).toBe('web1 through the proxy command ssh -W %h:%p gw')
    expect(await gates.forHost(host('web1', 2222, route))).toBe(await gates.forHost(host('web1', 22, route)))
    expect(await gates.forHost(host('web1', 22, route))).not.toBe(await gates.forHost(host('web1')))
  })
})
