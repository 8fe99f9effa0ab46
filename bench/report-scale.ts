/**
 * The report at fleet scale, in-process: the same four writers main runs after a fleet (results file,
 * annotations, outputs, job summary), timed on synthetic results of `hosts` hosts × `steps` steps with
 * full-size tails (20 lines a stream), some failed hosts and warnings, and an RSA-4096 key registered
 * as the secret to mask, as a run with `private-key` has it.
 */
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { HostResult, StepResult } from '../src/base/results'
import { registerSecretLines } from '../src/base/secrets'
import { Workspace } from '../src/base/workspace'
import { annotate } from '../src/report/annotations'
import { setOutputs } from '../src/report/action-outputs'
import { writeResultsFile } from '../src/report/results-file'
import { summaryMarkdown, writeSummary } from '../src/report/summary'
import { Timeline } from '../src/report/timeline'

/**
 * What each writer took, and all of them together: wall and CPU time (user + system) in ms. They run
 * synchronously on one thread, so on an idle machine wall ≈ CPU; on a loaded one CPU is what they cost.
 */
export interface ReportTimes {
  parts: Array<{ what: string; wallMs: number; cpuMs: number }>
  wallMs: number
  cpuMs: number
}

const LINE = 'Step 4/9 : RUN apt-get install -y --no-install-recommends ca-certificates curl gnupg (0.4 s)'

/** A host's result: every step run, 20 lines on stdout and 2 on stderr; every 50th host failed on its last step. */
function synthetic(i: number, steps: number): HostResult {
  const failed = i % 50 === 49
  const tail = (n: number): string => Array.from({ length: n }, (_, k) => `${LINE} #${i}.${k}`).join('\n')
  const stepResults: StepResult[] = Array.from({ length: steps }, (_, s) => ({
    name: `step ${s + 1}`,
    status: failed && s === steps - 1 ? 'failed' : 'success',
    exitCode: failed && s === steps - 1 ? 2 : 0,
    signal: null,
    durationMs: 300 + ((i * 7 + s * 13) % 400),
    attempts: 1,
    lost: false,
    stdoutTail: tail(20),
    stderrTail: tail(2),
    ...(failed && s === steps - 1 ? { error: 'exit code 2' } : {})
  }))
  return {
    host: `deploy@10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:22`,
    status: failed ? 'failed' : 'success',
    exitCode: failed ? 2 : 0,
    durationMs: stepResults.reduce((n, s) => n + s.durationMs, 0),
    attempts: i % 20 === 0 ? 2 : 1,
    steps: stepResults,
    warnings:
      i % 20 === 0
        ? ['connected after 2 attempts: Connection lost before handshake (the server may be throttling new connections, MaxStartups)']
        : [],
    ...(failed ? { error: `step ${steps} failed: exit code 2`, failedStep: `step ${steps}` } : {})
  }
}

/** Runs `fn` with the process's stdout silenced (the runner commands the writers print: ::add-mask::, ::error::). */
function quiet<T>(fn: () => T): T {
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = (() => true) as typeof process.stdout.write
  try {
    return fn()
  } finally {
    process.stdout.write = write
  }
}

/**
 * Times main's four report writers on `hosts` × `steps` synthetic results, once (as a run does). Once per
 * process: @actions/core keeps the path of the first summary file it wrote, in a directory removed here.
 */
export async function timeReport(hosts: number, steps: number): Promise<ReportTimes> {
  const dir = mkdtempSync(join(tmpdir(), 'ssh-fleet-report-'))
  const saved = { GITHUB_OUTPUT: process.env.GITHUB_OUTPUT, GITHUB_STEP_SUMMARY: process.env.GITHUB_STEP_SUMMARY }
  try {
    process.env.GITHUB_OUTPUT = join(dir, 'output')
    process.env.GITHUB_STEP_SUMMARY = join(dir, 'summary')
    writeFileSync(process.env.GITHUB_OUTPUT, '')
    writeFileSync(process.env.GITHUB_STEP_SUMMARY, '')
    const key = generateKeyPairSync('rsa', { modulusLength: 4096 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string
    quiet(() => registerSecretLines(key))
    const t0 = Date.now() - 60_000
    const results = Array.from({ length: hosts }, (_, i) => synthetic(i, steps))
    const stepNames = Array.from({ length: steps }, (_, s) => `step ${s + 1}`)
    const timeline = new Timeline()
    results.forEach((r, i) => {
      const host = { name: r.host } as Parameters<Timeline['stepRan']>[0]
      timeline.batchStarted(1, 1, [host])
      r.steps.forEach((s, k) => timeline.stepRan(host, k, t0 + i * 10 + k * 500, t0 + i * 10 + k * 500 + s.durationMs))
    })
    const workspace = new Workspace(dir)
    const facts = {
      shard: null,
      hosts: results.map((r) => r.host),
      inventory: results.map((r) => r.host),
      plan: stepNames.map((name) => ({ name, kind: 'run' })),
      startedAt: new Date(t0).toISOString(),
      endedAt: new Date().toISOString(),
      actionVersion: '0.0.0'
    }
    const parts: ReportTimes['parts'] = []
    const time = async (what: string, fn: () => void | Promise<void>): Promise<void> => {
      const started = performance.now()
      const cpu = process.cpuUsage()
      await quiet(fn)
      const used = process.cpuUsage(cpu)
      parts.push({ what, wallMs: performance.now() - started, cpuMs: (used.user + used.system) / 1000 })
    }
    await time('results file', () => writeResultsFile(workspace, 'results.json', facts, results))
    await time('annotations', () => annotate(results, 60_000))
    await time('outputs', () => setOutputs(results))
    await time('job summary', () => writeSummary(summaryMarkdown({ results, elapsedMs: 60_000, steps: stepNames, timeline })))
    return { parts, wallMs: parts.reduce((n, p) => n + p.wallMs, 0), cpuMs: parts.reduce((n, p) => n + p.cpuMs, 0) }
  } finally {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    rmSync(dir, { recursive: true, force: true })
  }
}
