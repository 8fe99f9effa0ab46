import pLimit from 'p-limit'
import type { HostResult } from './host-runner'
import type { Host } from './settings'

/**
 * Runs every host with at most `concurrency` in flight. A host's failure is its result; even a
 * bug that throws inside one host becomes that host's failed result and never abandons the others.
 */
export async function runFleet(
  hosts: Host[],
  concurrency: number,
  runOne: (host: Host) => Promise<HostResult>
): Promise<HostResult[]> {
  const limit = pLimit(concurrency)
  return Promise.all(
    hosts.map((host) =>
      limit(async (): Promise<HostResult> => {
        try {
          return await runOne(host)
        } catch (err) {
          return {
            host: host.name,
            status: 'failed',
            exitCode: null,
            durationMs: 0,
            attempts: 0,
            error: `internal error: ${(err as Error).message}`,
            steps: [],
            warnings: []
          }
        }
      })
    )
  )
}
