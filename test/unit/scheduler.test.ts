import { describe, expect, test } from 'vitest'
import type { HostResult } from '../../src/host-runner'
import { runFleet } from '../../src/scheduler'
import type { Host } from '../../src/settings'

const hosts: Host[] = Array.from({ length: 12 }, (_, i) => ({ name: `h${i}`, user: 'u', hostname: `h${i}`, port: 22, index: i }))
const ok = (host: Host): HostResult => ({ host: host.name, status: 'success', exitCode: 0, durationMs: 0, attempts: 1, steps: [], warnings: [] })

describe('runFleet', () => {
  test('never has more than concurrency hosts in flight, and uses all of it', async () => {
    let inFlight = 0
    let peak = 0
    const results = await runFleet(hosts, 3, async (host) => {
      peak = Math.max(peak, ++inFlight)
      await new Promise((r) => setTimeout(r, 10))
      inFlight--
      return ok(host)
    })
    expect(peak).toBe(3)
    expect(results.map((r) => r.host)).toEqual(hosts.map((h) => h.name))
  })

  test('a host that throws becomes a failed result and the others still run', async () => {
    const results = await runFleet(hosts, 4, async (host) => {
      if (host.index === 2) throw new Error('bug')
      await new Promise((r) => setTimeout(r, 5))
      return ok(host)
    })
    expect(results[2]).toMatchObject({ status: 'failed', error: 'internal error: bug' })
    expect(results.filter((r) => r.status === 'success')).toHaveLength(11)
  })
})
