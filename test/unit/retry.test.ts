import { describe, expect, test } from 'vitest'
import { backoffDelay, withRetries } from '../../src/ssh/retry'

describe('backoffDelay', () => {
  test('full jitter below an exponential ceiling capped at 30 s', () => {
    const top = () => 0.999999
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, 1000, 30_000, top))).toEqual([999, 1999, 3999, 7999, 15999, 29999, 29999])
    expect(backoffDelay(3, 1000, 30_000, () => 0)).toBe(0)
    expect(backoffDelay(3, 1000, 30_000, () => 0.5)).toBe(2000)
  })
})

describe('withRetries', () => {
  test('retries a retryable outcome until it passes, sleeping the computed delays', async () => {
    const slept: number[] = []
    let calls = 0
    const { outcome, attempts } = await withRetries(async () => ++calls, {
      retries: 5,
      retryable: (n) => n < 3,
      delayMs: (retry) => retry * 100,
      sleep: async (ms) => {
        slept.push(ms)
      }
    })
    expect({ outcome, attempts, slept }).toEqual({ outcome: 3, attempts: 3, slept: [100, 200] })
  })

  test('stops when retries are spent and returns the last outcome', async () => {
    const seen: number[] = []
    const { outcome, attempts } = await withRetries(async (n) => `fail ${n}`, {
      retries: 2,
      retryable: () => true,
      delayMs: () => 0,
      sleep: async () => {},
      onRetry: (_o, retry) => seen.push(retry)
    })
    expect({ outcome, attempts, seen }).toEqual({ outcome: 'fail 3', attempts: 3, seen: [1, 2] })
  })

  test('does not retry an outcome that is not retryable', async () => {
    let calls = 0
    const { attempts } = await withRetries(async () => ++calls, { retries: 4, retryable: () => false, delayMs: () => 0 })
    expect(attempts).toBe(1)
    expect(calls).toBe(1)
  })
})
