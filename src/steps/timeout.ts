/** `work`'s value, or undefined once `ms` have passed (0: no limit) or `signal` aborted, first. */
export function withinTimeout<T>(work: Promise<T>, ms: number, signal?: AbortSignal): Promise<T | undefined> {
  if (ms <= 0 && !signal) return work
  let timer: NodeJS.Timeout | undefined
  let onAbort = (): void => {}
  const expired = new Promise<undefined>((resolve) => {
    if (ms > 0) timer = setTimeout(() => resolve(undefined), ms)
    onAbort = () => resolve(undefined)
    if (signal?.aborted) onAbort()
    else signal?.addEventListener('abort', onAbort, { once: true })
  })
  return Promise.race([work, expired]).finally(() => {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  })
}
