/**
 * The job summary: a run (a dry run, a merged fleet) as Markdown within GitHub's size limit, every
 * table cell built by markdown.ts's row().
 */
import * as core from '@actions/core'
import { hostFailed, type HostResult } from '../base/results'
import { seconds } from './output'
import { codeBlock, inline, row, table } from './markdown'
import { partsWithin } from './json-budget'
import { mask } from '../base/secrets'
import { tally } from './tally'
import { lastWords } from './last-words'
import { BudgetedMarkdown } from './budgeted-markdown'

const STATUS_ICON: Record<HostResult['status'], string> = {
  success: '✅ success',
  failed: '❌ failed',
  unreachable: '⛔ unreachable',
  cancelled: '🛑 cancelled',
  skipped: '⏭️ skipped'
}

/** GitHub refuses a step summary over 1 MiB; this leaves room for the runner's own framing. */
const SUMMARY_BYTES = 1_000_000

/**
 * The job summary as markdown/HTML: the tally, `intro` (lines of the caller's), a row per host, then
 * the failed hosts' reasons.
 */
export function summaryMarkdown(results: HostResult[], elapsedMs: number, planSteps: number, intro: string[] = []): string {
  const columns: Array<[string, (r: HostResult) => string]> = [
    ['Host', (r) => r.host],
    ['Status', (r) => STATUS_ICON[r.status]],
    ['Steps done', (r) => `${r.steps.filter((s) => s.status === 'success' && !s.phase).length}/${planSteps}`],
    ['Attempts', (r) => String(r.attempts)],
    ['Duration', (r) => seconds(r.durationMs)],
    ['Exit code', (r) => String(r.exitCode ?? '')]
  ]
  // Columns for kinds of steps the plan has.
  if (results.some((r) => r.steps.some((s) => s.reboot))) {
    columns.push(['Reboot downtime', (r) => r.steps.flatMap((s) => (s.reboot ? [seconds(s.reboot.downtimeMs)] : [])).join(', ')])
  }
  if (results.some((r) => r.steps.some((s) => s.transfer))) {
    columns.push([
      'Uploaded',
      (r) => {
        const moved = r.steps.flatMap((s) => (s.transfer ? [s.transfer] : []))
        const overExec = moved.some((t) => t.transport === 'exec') ? ' (exec, no SFTP)' : ''
        return moved.length
          ? `${moved.reduce((n, t) => n + t.files, 0)} files, ${(moved.reduce((n, t) => n + t.bytes, 0) / 1e6).toFixed(1)} MB${overExec}`
          : ''
      }
    ])
  }
  const md = new BudgetedMarkdown(SUMMARY_BYTES)
  md.add(['## ssh-fleet', '', tally(results, elapsedMs), '', ...(intro.length ? [...intro, ''] : [])])
  // Rows are built one at a time as they are added: none past the budget (100k hosts × 1000 steps).
  md.add(
    table(
      columns.map(([title]) => title),
      []
    )
  )
  md.each(
    results,
    (r) => [row(columns.map(([, cell]) => cell(r)))],
    (left) => ['', `${left} more hosts are not in this table (the summary's size limit): the results output lists every host.`]
  )
  if (results.some((r) => r.steps.length > 1)) {
    const details = [
      '',
      '<details><summary>Steps per host</summary>',
      '',
      ...table(['Host', 'Step', 'Status', 'Exit code', 'Signal', 'Duration', 'Attempts'], [])
    ]
    const end = ['', '</details>']
    const room = md.room - [...details, ...end].reduce((n, l) => n + Buffer.byteLength(l) + 1, 0)
    const stepRows = function* (): Generator<string> {
      for (const r of results)
        for (const s of r.steps)
          yield row([r.host, s.name, s.status, String(s.exitCode ?? ''), s.signal ?? '', seconds(s.durationMs), String(s.attempts)])
    }
    // Newline-joined, as the summary's lines are: the whole table fits, or it is left out.
    const { kept, complete } = partsWithin(stepRows(), room - 1, '\n')
    if (complete) md.add([...details, ...kept, ...end])
    else md.add(['', "Steps per host: left out (the summary's size limit); the results output has every step."])
  }
  const skippedHosts = results.filter((r) => r.status === 'skipped')
  if (skippedHosts.length > 0) {
    md.add(['', '### Skipped hosts', ''])
    if (!md.add(codeBlock(skippedHosts.map((r) => `${r.host}: ${r.error ?? 'skipped'}`).join('\n'))))
      md.add(["Left out (the summary's size limit): the results output has each reason."])
  }
  const failures = results.filter(hostFailed)
  if (failures.length > 0) {
    md.add(['', '### Failed hosts'])
    md.each(
      failures,
      (r) => {
        const said = lastWords(r)
        return [
          '',
          `**${inline(r.host)}**${r.failedStep ? ` (step ${inline(r.failedStep)})` : ''}:`,
          '',
          ...codeBlock([r.error ?? r.status, ...(said ? [`${said.stream}:`, said.text] : [])].join('\n'))
        ]
      },
      (left) => [
        '',
        `${left} more failed hosts are not shown here (the summary's size limit): the results output and the failed output list them.`
      ]
    )
  }
  return md.text()
}

/** The summary of a dry run: the plan, and that nothing was connected to. */
export function dryRunMarkdown(plan: string): string {
  return ['## ssh-fleet (dry run)', '', 'Nothing was connected to.', '', ...codeBlock(plan), ''].join('\n')
}

/** Hosts listed as the slowest in a merged fleet's summary. */
const SLOWEST_HOSTS = 5

/**
 * What only a whole fleet shows (the merge action): failures per step of the plan, and the slowest
 * hosts. Markdown lines to go before the per-host table.
 */
export function fleetMarkdown(results: HostResult[], planSteps: string[]): string[] {
  // One pass over every host's steps: hosts each step name failed on (a host counted once per name).
  const failedOn = new Map<string, number>()
  for (const r of results)
    for (const name of new Set(r.steps.filter((s) => s.status === 'failed').map((s) => s.name)))
      failedOn.set(name, (failedOn.get(name) ?? 0) + 1)
  const lines = table(
    ['Step', 'Failed on'],
    planSteps.map((name) => [name, String(failedOn.get(name) ?? 0)])
  )
  const ran = results
    .filter((r) => r.durationMs > 0)
    .sort((a, b) => b.durationMs - a.durationMs)
    .slice(0, SLOWEST_HOSTS)
  if (ran.length > 0) lines.push('', `Slowest hosts: ${ran.map((r) => `${inline(r.host)} (${seconds(r.durationMs)})`).join(', ')}`)
  return lines
}

/**
 * Writes the job summary, masked (its cells and code blocks are masked as they are built; this also
 * catches a secret in any other text); outside Actions (a local run) there is no summary file.
 */
export async function writeSummary(markdown: string): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  await core.summary.addRaw(mask(markdown)).write()
}
