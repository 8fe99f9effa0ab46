import { describe, expect, test } from 'vitest'
import type { HostResult } from '../../src/base/results'
import { planBatches, parseBatchSpec } from '../../src/plan/plan'
import { runFleet, type FleetPlan, type HostRunner } from '../../src/run/scheduler'
import type { RolloutWatch } from '../../src/report/rollout-log'
import type { Host, Step } from '../../src/plan/settings'

const hosts = (n: number): Host[] =>
  Array.from({ length: n }, (_, i) => ({ name: `h${i}`, user: 'u', hostname: `h${i}`, port: 22, index: i }))
const steps = (n: number): Step[] =>
  Array.from({ length: n }, (_, i) => ({
    kind: 'run',
    name: `s${i}`,
    script: 'x',
    env: {},
    timeoutMs: 0,
    retries: 0,
    retryDelayMs: 0,
    continueOnError: false,
    runOnce: false,
    capture: false,
    sudo: false,
    pty: false
  }))

/** A fake host run: records what ran when; fails where `fails` says. */
function fakeFleet(fails: (host: Host, step: Step) => boolean = () => false, delayMs = 5) {
  const events: Array<{ host: string; step: string; phase: 'start' | 'end'; at: number }> = []
  let inFlight = 0
  let peak = 0
  let clock = 0
  const start = (host: Host): HostRunner => {
    const result: HostResult = { host: host.name, status: 'success', exitCode: 0, durationMs: 0, attempts: 1, steps: [], warnings: [] }
    return {
      host,
      get failed() {
        return result.status === 'failed'
      },
      async runStep(step) {
        peak = Math.max(peak, ++inFlight)
        events.push({ host: host.name, step: step.name, phase: 'start', at: clock++ })
        await new Promise((r) => setTimeout(r, delayMs))
        events.push({ host: host.name, step: step.name, phase: 'end', at: clock++ })
        inFlight--
        const bad = fails(host, step)
        result.steps.push({
          name: step.name,
          status: bad ? 'failed' : 'success',
          exitCode: bad ? 1 : 0,
          signal: null,
          durationMs: 1,
          attempts: 1,
          lost: false,
          stdoutTail: '',
          stderrTail: ''
        })
        if (bad) result.status = 'failed'
        return !bad
      },
      skip(reason, code) {
        if (result.status !== 'failed') Object.assign(result, { status: 'skipped', error: reason, skipCode: code })
      },
      cancel(step) {
        if (result.status === 'failed') return
        Object.assign(
          result,
          result.steps.length
            ? { status: 'cancelled', error: `cancelled before ${step.name}` }
            : { status: 'skipped', error: 'not started' }
        )
      },
      afterPlan: async () => {},
      finish: () => result
    }
  }
  return { events, start, peak: () => peak }
}

const plan = (over: Partial<FleetPlan> & { hosts?: Host[] }): FleetPlan => {
  const list = over.hosts ?? hosts(6)
  return { batches: [list], steps: steps(1), strategy: 'host', concurrency: 10, maxFailures: Infinity, ...over }
}

describe('runFleet', () => {
  test('never has more than concurrency hosts in flight, and uses all of it', async () => {
    const fleet = fakeFleet()
    const results = await runFleet(plan({ hosts: hosts(12), concurrency: 3, steps: steps(2) }), fleet.start)
    expect(fleet.peak()).toBe(3)
    expect(results.map((r) => r.host)).toEqual(hosts(12).map((h) => h.name))
    expect(results.every((r) => r.steps.length === 2)).toBe(true)
  })

  test('host strategy: a host goes through the whole plan on its own', async () => {
    const fleet = fakeFleet()
    await runFleet(plan({ hosts: hosts(2), concurrency: 1, steps: steps(3) }), fleet.start)
    expect(fleet.events.filter((e) => e.phase === 'start').map((e) => `${e.host}.${e.step}`)).toEqual([
      'h0.s0',
      'h0.s1',
      'h0.s2',
      'h1.s0',
      'h1.s1',
      'h1.s2'
    ])
  })

  test('step strategy: each step ends on every host before the next starts anywhere', async () => {
    const fleet = fakeFleet(() => false, 1)
    await runFleet(plan({ hosts: hosts(5), concurrency: 2, steps: steps(3), strategy: 'step' }), fleet.start)
    for (const [before, after] of [
      ['s0', 's1'],
      ['s1', 's2']
    ]) {
      const lastEnd = Math.max(...fleet.events.filter((e) => e.step === before && e.phase === 'end').map((e) => e.at))
      const firstStart = Math.min(...fleet.events.filter((e) => e.step === after && e.phase === 'start').map((e) => e.at))
      expect(lastEnd).toBeLessThan(firstStart)
    }
    expect(fleet.peak()).toBe(2)
  })

  test('a failed host stops; the others go on when max-failures allows', async () => {
    const fleet = fakeFleet((h, s) => h.index === 1 && s.name === 's0')
    const results = await runFleet(plan({ steps: steps(2) }), fleet.start)
    expect(results.map((r) => r.status)).toEqual(['success', 'failed', 'success', 'success', 'success', 'success'])
    expect(results[1].steps).toHaveLength(1)
  })

  test('a failing host in batch 2 of 1,50% stops batch 3, whose hosts are skipped', async () => {
    const list = hosts(6)
    const batches = planBatches(list, parseBatchSpec('1,50%'))
    expect(batches.map((b) => b.length)).toEqual([1, 3, 2])
    const fleet = fakeFleet((h) => h.index === 2)
    const results = await runFleet(plan({ hosts: list, batches, maxFailures: 0 }), fleet.start)
    expect(results.map((r) => r.status)).toEqual(['success', 'success', 'failed', 'success', 'skipped', 'skipped'])
    expect(results[4]).toMatchObject({
      skipCode: 'not-started',
      error: 'not started: the rollout stopped in batch 2/3 when h2 failed: more than 0 hosts failed (max-failures)'
    })
    expect(fleet.events.some((e) => e.host === 'h4' || e.host === 'h5')).toBe(false)
  })

  test.each([
    ['host', ['not-started', 'not-started']],
    // Step by step, the whole batch ran s0 before s1 started anywhere.
    ['step', ['stopped', 'stopped']]
  ] as const)(
    'halted (%s strategy): hosts stopped mid-plan carry `stopped` and how far they got, hosts never started `not-started`; watchers hear the batches and the halt',
    async (strategy, queued) => {
      const list = hosts(6)
      // h0 fails its second step while h1 runs its own; h2, h3 wait for a slot; h4, h5 are a batch later.
      const fleet = fakeFleet((h, s) => h.index === 0 && s.name === 's1', 10)
      const heard: string[] = []
      const watch: RolloutWatch = {
        batchStarted: (b, n, hs) => heard.push(`start ${b}/${n} ${hs.map((h) => h.name).join(',')}`),
        halted: (halt) => heard.push(`halt ${halt.host} ${halt.batch}/${halt.batches}`),
        batchFinished: (b, n, rs) => heard.push(`end ${b}/${n} ${rs.map((r) => r.skipCode ?? r.status).join(',')}`)
      }
      const results = await runFleet(
        plan({ batches: [list.slice(0, 4), list.slice(4)], steps: steps(3), strategy, concurrency: 2, maxFailures: 0 }),
        fleet.start,
        undefined,
        [watch]
      )
      expect(results.map((r) => r.skipCode ?? r.status)).toEqual(['failed', 'stopped', ...queued, 'not-started', 'not-started'])
      expect(results[1].error).toBe(
        'stopped after step 2 of 3: the rollout stopped in batch 1/2 when h0 failed: more than 0 hosts failed (max-failures)'
      )
      expect(results[1].steps.map((s) => s.name)).toEqual(['s0', 's1'])
      expect(results[4].error).toBe('not started: the rollout stopped in batch 1/2 when h0 failed: more than 0 hosts failed (max-failures)')
      expect(heard).toEqual(['start 1/2 h0,h1,h2,h3', 'halt h0 1/2', `end 1/2 failed,stopped,${queued.join(',')}`])
    }
  )

  test('past max-failures, hosts in flight finish their step and stop, queued hosts never start', async () => {
    const fleet = fakeFleet((h) => h.index === 0, 20)
    const results = await runFleet(plan({ hosts: hosts(4), concurrency: 2, steps: steps(3), maxFailures: 0 }), fleet.start)
    expect(results[0].status).toBe('failed')
    // h1 was in flight with h0: it finished step s0, then stopped.
    expect(results[1]).toMatchObject({ status: 'skipped' })
    expect(results[1].steps.map((s) => s.name)).toEqual(['s0'])
    expect(results.slice(2).every((r) => r.status === 'skipped' && r.steps.length === 0)).toBe(true)
  })

  test('max-failures counts: 1 allows one failed host', async () => {
    const fleet = fakeFleet((h) => h.index === 0 || h.index === 3)
    const results = await runFleet(plan({ hosts: hosts(6), concurrency: 1, maxFailures: 1 }), fleet.start)
    expect(results.map((r) => r.status)).toEqual(['failed', 'success', 'success', 'failed', 'skipped', 'skipped'])
  })

  test.each(['host', 'step'] as const)(
    'a cancel (%s strategy): hosts in flight stop before their next step, nothing else starts',
    async (strategy) => {
      const fleet = fakeFleet(() => false, 20)
      const cancel = new AbortController()
      const list = hosts(6)
      const running = runFleet(
        plan({ batches: [list.slice(0, 4), list.slice(4)], steps: steps(3), strategy, concurrency: 2 }),
        fleet.start,
        cancel.signal
      )
      let seenAtCancel = -1
      setTimeout(() => {
        seenAtCancel = fleet.events.length
        cancel.abort()
      }, 30) // during the first steps of the first two hosts
      const results = await running
      const byHost = Object.fromEntries(results.map((r) => [r.host, r.status]))
      expect(results.filter((r) => r.status === 'cancelled').length).toBeGreaterThan(0)
      expect(results.filter((r) => r.status === 'success')).toHaveLength(0)
      // The second batch never started; nothing ran after the cancel but the steps already in flight.
      expect([byHost.h4, byHost.h5]).toEqual(['skipped', 'skipped'])
      expect(seenAtCancel).toBeGreaterThan(0)
      expect(fleet.events.slice(seenAtCancel).filter((e) => e.phase === 'start')).toEqual([])
    }
  )
})
