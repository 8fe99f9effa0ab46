/** Prints a plain closing line, `N passed, N failed, N skipped`, that any CI log reader understands. */
import { writeSync } from 'node:fs'
import type { Reporter, TestModule } from 'vitest/node'

export default class TallyReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 }
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const state = t.result().state
        if (state === 'passed') counts.passed++
        else if (state === 'failed') counts.failed++
        else counts.skipped++
      }
    }
    // Written at exit so it comes after every other reporter's summary.
    process.once('exit', () => writeSync(1, `\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`))
  }
}
