import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // Integration tests share one machine's sshd processes and time keepalives: run files one at a time.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    include: ['test/**/*.test.ts'],
    // ssh2 carries patches (patches/, issue 26): applied before any test imports it.
    globalSetup: ['./scripts/patch-deps.mjs']
  }
})
