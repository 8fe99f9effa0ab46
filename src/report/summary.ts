/**
 * The job summary: a run (a dry run, a merged fleet) as Markdown within GitHub's size limit, every
 * table cell built by markdown.ts's row(), every Mermaid label by its mermaidText().
 */
import * as core from '@actions/core'
import { hostFailed, type Halt, type HostResult, type StepResult } from '../base/results'
import { seconds } from './output'
import { codeBlock, inline, row, table } from './markdown'
import { mask } from '../base/secrets'
import { tally } from './tally'
import { lastWords } from './last-words'
import { BudgetedMarkdown } from './budgeted-markdown'
import { size } from './units'
import { haltText, hostSpan } from './rollout-log'
import type { Timeline } from './timeline'

/** GitHub refuses a step summary over 1 MiB; this leaves room for the runner's own framing. */
const SUMMARY_BYTES = 1_000_000
/**
 * Steps shown a column each in the hosts' table (the plan's, then on-failure and always steps seen);
 * past this the table is too wide to read, and a `Steps done` column counts them instead.
 */
export const STEP_COLUMNS = 10

/** What a summary shows. */
export interface SummaryInput {
  results: HostResult[]
  elapsedMs: number
  /** The plan's step names, in order. */
  steps: string[]
  /** What tells this summary from another ssh-fleet step's in the same job: the step's id (stepTitle). */
  title?: string
  /** This run's log (runLink). */
  runUrl?: string
  /** Which host stopped the rollout (max-failures). */
  halt?: Halt
  timeline?: Timeline
  /** Lines of the caller's, before the hosts' table. */
  intro?: string[]
}

/** The step's id on the runner (GITHUB_ACTION: its `id`, or `__run_2`-like when it has none), when it has a step id's shape. */
export function stepTitle(env: NodeJS.ProcessEnv): string | undefined {
  const id = env.GITHUB_ACTION
  return id && /^[A-Za-z0-9_.-]{1,100}$/.test(id) ? id : undefined
}

/** How a host ended, in a cell: a skipped host by its code, `stopped after step k of n` from the steps it ran. */
function statusCell(r: HostResult, planSteps: number): string {
  if (r.status !== 'skipped') return STATUS_ICON[r.status]
  if (r.skipCode === 'stopped') return `⏸️ stopped after step ${r.steps.filter((s) => !s.phase).length} of ${planSteps}`
  if (r.skipCode === 'not-started') return '⏭️ not started'
  if (r.skipCode === 'no-results') return '❔ no results'
  return STATUS_ICON.skipped
}

const STATUS_ICON: Record<HostResult['status'], string> = {
  success: '✅ success',
  failed: '❌ failed',
  unreachable: '⛔ unreachable',
  cancelled: '🛑 cancelled',
  skipped: '⏭️ skipped'
}

/** One step on one host, in a cell: outcome, then how long, and why it failed in a few words. */
function stepCell(s: StepResult | undefined): string {
  if (!s) return ''
  if (s.status === 'skipped') return `⏭️ ${s.error ?? 'skipped'}`
  const how = s.status === 'success' ? '✅' : '❌'
  const why =
    s.status === 'failed'
      ? s.signal
        ? ` ${s.signal}`
        : s.exitCode !== null
          ? ` exit ${s.exitCode}`
          : s.lost
            ? ' connection lost'
            : ''
      : ''
  return `${how} ${seconds(s.durationMs)}${why}${s.attempts > 1 ? ` (${s.attempts} tries)` : ''}`
}

type Column = [title: string, cell: (r: HostResult) => string]

/**
 * The hosts' table's columns: host, status, a column per step (status and duration) while the steps
 * fit STEP_COLUMNS, then those of what only some runs have, left out when empty on every host.
 */
function hostColumns(results: HostResult[], steps: string[]): Column[] {
  const hooks = new Map<string, { phase: string; name: string }>()
  for (const r of results) for (const s of r.steps) if (s.phase) hooks.set(`${s.phase}: ${s.name}`, { phase: s.phase, name: s.name })
  const perStep = steps.length + hooks.size <= STEP_COLUMNS
  const always: Column[] = [
    ['Host', (r) => r.host],
    ['Status', (r) => statusCell(r, steps.length)],
    ...(perStep
      ? [
          ...steps.map((name, i): Column => [name, (r) => stepCell(r.steps.filter((s) => !s.phase)[i])]),
          ...[...hooks].map(([title, h]): Column => [title, (r) => stepCell(r.steps.find((s) => s.phase === h.phase && s.name === h.name))])
        ]
      : [
          ['Steps done', (r: HostResult) => `${r.steps.filter((s) => s.status === 'success' && !s.phase).length}/${steps.length}`] as Column
        ])
  ]
  const optional: Column[] = [
    ['Duration', (r) => (r.durationMs > 0 ? seconds(r.durationMs) : '')],
    ['Connect attempts', (r) => (r.attempts > 1 ? String(r.attempts) : '')],
    ['Reboot downtime', (r) => r.steps.flatMap((s) => (s.reboot ? [seconds(s.reboot.downtimeMs)] : [])).join(', ')],
    [
      'Uploaded',
      (r) => {
        const moved = r.steps.flatMap((s) => (s.transfer ? [s.transfer] : []))
        const overExec = moved.some((t) => t.transport === 'exec') ? ' (exec, no SFTP)' : ''
        const sum = (key: 'files' | 'bytes' | 'unchanged' | 'deleted'): number => moved.reduce((n, t) => n + t[key], 0)
        const also = [
          sum('unchanged') > 0 ? `, ${sum('unchanged')} unchanged` : '',
          sum('deleted') > 0 ? `, ${sum('deleted')} deleted` : ''
        ]
        return moved.length ? `${sum('files')} files, ${size(sum('bytes'))}${also.join('')}${overExec}` : ''
      }
    ]
  ]
  // The plan's steps are always shown (a step no host reached says where the rollout stopped). The
  // rest: a check that stops at the first host with something to show, so only a column that is
  // empty everywhere costs a pass.
  return [...always, ...optional.filter(([, cell]) => results.some((r) => cell(r) !== ''))]
}

/**
 * The job summary as markdown/HTML: the title, the run's link, the tally, the halt, `intro`, a row per
 * host with a column per step, the timeline, then the hosts that were stopped or skipped and the failed
 * hosts' reasons.
 */
export function summaryMarkdown(input: SummaryInput): string {
  const { results, elapsedMs, steps, title, runUrl, halt, timeline, intro = [] } = input
  const md = new BudgetedMarkdown(SUMMARY_BYTES)
  md.add([
    `## ssh-fleet${title ? `: ${inline(title)}` : ''}`,
    '',
    // runUrl has the shape RUN_LINK checks: no character in it is Markdown.
    `${tally(results, elapsedMs)}${runUrl ? ` · [run log](${runUrl})` : ''}`,
    '',
    ...(halt ? [`**${inline(haltText(halt))}**`, ''] : []),
    ...(intro.length ? [...intro, ''] : [])
  ])
  const columns = hostColumns(results, steps)
  md.add(
    table(
      columns.map(([name]) => name),
      []
    )
  )
  // Rows are built one at a time as they are added: none past the budget (100k hosts × 1000 steps).
  md.each(
    results,
    (r) => [row(columns.map(([, cell]) => cell(r)))],
    (left) => ['', `${left} more hosts are not in this table (the summary's size limit): the results output lists every host.`]
  )
  const chart = timeline?.gantt(results, steps)
  if (chart?.lines.length) {
    const note = chart.left ? ['', `${chart.left} more hosts are not in the timeline (its limit of bars).`] : []
    if (!md.add(['', '### Timeline', '', ...chart.lines, ...note])) md.add(['', "Timeline: left out (the summary's size limit)."])
  }
  const stopped = results.filter((r) => r.skipCode === 'stopped')
  const notStarted = results.filter((r) => r.skipCode === 'not-started')
  if (stopped.length || notStarted.length) {
    md.add(['', '### Stopped by max-failures', ''])
    md.add([
      ...(stopped.length ? [`- stopped mid-plan (${stopped.length}): ${inline(hostSpan(stopped.map((r) => r.host)))}`] : []),
      ...(notStarted.length ? [`- not started (${notStarted.length}): ${inline(hostSpan(notStarted.map((r) => r.host)))}`] : [])
    ])
  }
  const skippedHosts = results.filter((r) => r.status === 'skipped' && r.skipCode !== 'stopped' && r.skipCode !== 'not-started')
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

/**
 * A line linking each merged shard's log (files with a link: runUrl has RUN_LINK's shape, nothing in
 * it is Markdown); none when no file has one (files of earlier versions).
 */
export function shardLinks(runs: Array<{ shard: string | null; runUrl?: string }>): string[] {
  const linked = runs.flatMap((r) => (r.runUrl ? [`[${r.shard ? `shard ${r.shard}` : 'run'}](${r.runUrl})`] : []))
  return linked.length ? ['', `Logs: ${linked.join(' · ')}`] : []
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
