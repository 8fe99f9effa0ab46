/** What a test file sets up once for all its tests, and takes down after them. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'
import { startSshd, type Sshd, type SshdOptions } from './sshd'

/** The file's own sshd: started before its tests (handed to `started`), stopped after them. */
export function useSshd(options: SshdOptions, started: (sshd: Sshd) => void): void {
  let sshd: Sshd | undefined
  beforeAll(async () => {
    sshd = await startSshd(options)
    started(sshd)
  })
  afterAll(async () => {
    await sshd?.stop()
  })
}

/** A temporary folder for the runner's side (GITHUB_WORKSPACE), removed after the file's tests. */
export function useWorkspace(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `ssh-fleet-${name}-`))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
