/**
 * The run's timeline as a Mermaid gantt chart (GitHub renders ```mermaid blocks in job summaries):
 * when each host ran each step, recorded as the scheduler runs them.
 */
import type { HostResult } from '../base/results'
import type { Host } from '../plan/settings'
import { mermaidText } from './markdown'
import type { RolloutWatch } from './rollout-log'

/**
 * Hosts drawn a section each, a bar per step; past this ("a few dozen", a picture a reader can still
 * follow), a section per batch and a bar per host, first step to last.
 */
export const TIMELINE_HOST_SECTIONS = 30
/** The most bars drawn: Mermaid lays out every bar, and past a few hundred the picture is a smear. */
export const TIMELINE_BARS = 400

/** When each step ran on each host, and each host's batch. */
export class Timeline implements RolloutWatch {
  private readonly batchOf = new Map<string, number>()
  /** Per host, per plan step index: [start, end] (Date.now() values). */
  private readonly spans = new Map<string, Array<[number, number]>>()

  batchStarted(batch: number, _batches: number, hosts: Host[]): void {
    for (const h of hosts) this.batchOf.set(h.name, batch)
  }

  stepRan(host: Host, step: number, startedAt: number, endedAt: number): void {
    let spans = this.spans.get(host.name)
    if (!spans) this.spans.set(host.name, (spans = []))
    spans[step] = [startedAt, endedAt]
  }

  /**
   * The chart as Markdown lines (a ```mermaid block), in the order of `results`; `left` counts hosts
   * past TIMELINE_BARS. Nothing when no step ran. Every label goes through mermaidText().
   */
  gantt(results: HostResult[], stepNames: string[]): { lines: string[]; left: number } {
    const ran = results.filter((r) => this.spans.has(r.host))
    if (ran.length === 0) return { lines: [], left: 0 }
    const tag = (status: string | undefined): string => (status === 'failed' ? 'crit, ' : status === 'success' ? 'done, ' : '')
    // Real times (dateFormat x): the axis then reads as clock time wherever the reader is.
    const bar = (label: string, status: string | undefined, [start, end]: [number, number]): string =>
      `    ${mermaidText(label)} :${tag(status)}${start}, ${Math.max(end, start + 1)}`
    const lines = ['```mermaid', 'gantt', '    dateFormat x', '    axisFormat %H:%M:%S']
    let bars = 0
    let drawn = 0
    if (ran.length <= TIMELINE_HOST_SECTIONS) {
      for (const r of ran) {
        const spans = this.spans.get(r.host) as Array<[number, number]>
        const planSteps = r.steps.filter((s) => !s.phase)
        const own = spans.flatMap((span, i) => (span ? [bar(stepNames[i] ?? `step ${i + 1}`, planSteps[i]?.status, span)] : []))
        if (bars + own.length > TIMELINE_BARS) break
        lines.push(`    section ${mermaidText(r.host)}`, ...own)
        bars += own.length
        drawn++
      }
    } else {
      let section: number | undefined
      for (const r of ran.slice(0, TIMELINE_BARS)) {
        const spans = (this.spans.get(r.host) as Array<[number, number]>).filter(Boolean)
        const batch = this.batchOf.get(r.host)
        if (batch !== section) lines.push(`    section ${mermaidText(`batch ${batch ?? '?'}`)}`)
        section = batch
        const status = r.status === 'success' ? 'success' : r.status === 'skipped' ? undefined : 'failed'
        lines.push(bar(r.host, status, [Math.min(...spans.map((s) => s[0])), Math.max(...spans.map((s) => s[1]))]))
        drawn++
      }
    }
    lines.push('```')
    return { lines, left: ran.length - drawn }
  }
}
