'use strict'
// Preloaded into a measured node process (node -r): writes its CPU time and peak RSS at exit.
const { writeFileSync } = require('node:fs')

process.once('exit', () => {
  const u = process.resourceUsage()
  if (process.env.BENCH_RUSAGE) {
    writeFileSync(process.env.BENCH_RUSAGE, JSON.stringify({ cpuMs: (u.userCPUTime + u.systemCPUTime) / 1000, maxRssKb: u.maxRSS }))
  }
})
