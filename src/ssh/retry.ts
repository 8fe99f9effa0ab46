/** Waits; injected so unit tests can run retries without real delays. */
export type Sleep = (ms: number) => Promise<void>

export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A sleep that ends early, at once, when `signal` aborts (the job was cancelled). */
export function cancellableSleep(signal: AbortSignal | undefined, sleep: Sleep = realSleep): Sleep {
  if (!signal) return sleep
  return (ms) =>
    new Promise((resolve) => {
      if (signal.aborted) return resolve()
      const done = (): void => {
        signal.removeEventListener('abort', done)
        resolve()
      }
      signal.addEventListener('abort', done, { once: true })
      void sleep(ms).then(done)
    })
}

/**
 * Exponential backoff with full jitter: a random delay in [0, min(cap, base * 2^(retry-1))).
 * `retry` counts from 1.
 */
export function backoffDelay(retry: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** Math.max(0, retry - 1)))
}

export interface RetryOptions<T> {
  /** Further attempts after the first. */
  retries: number
  /** Whether an outcome is worth another attempt. */
  retryable: (outcome: T) => boolean
  /** Delay before retry number `retry` (from 1). */
  delayMs: (retry: number) => number
  sleep?: Sleep
  onRetry?: (outcome: T, retry: number, delayMs: number) => void
}

/**
 * Runs `attempt` until it gives an outcome that is not retryable or the retries are spent.
 * Outcomes are values, not exceptions: a failed host is data. Returns the last outcome.
 */
export async function withRetries<T>(
  attempt: (n: number) => Promise<T>,
  options: RetryOptions<T>
): Promise<{ outcome: T; attempts: number }> {
  const sleep = options.sleep ?? realSleep
  let attempts = 1
  let outcome = await attempt(attempts)
  while (attempts <= options.retries && options.retryable(outcome)) {
    const delay = options.delayMs(attempts)
    options.onRetry?.(outcome, attempts, delay)
    await sleep(delay)
    attempts++
    outcome = await attempt(attempts)
  }
  return { outcome, attempts }
}
