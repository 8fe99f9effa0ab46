/**
 * Hosts' results as JSON within a byte budget: the one shortening the `results` output or a results
 * file goes through.
 */
import type { HostResult } from '../base/results'
import { mask } from '../base/secrets'
import { partsWithin } from './json-budget'
import { hostJson } from './results-json'

/** The last whole lines of `tail` within `chars`, marked when lines were left out. */
function lastLines(tail: string, chars: number): string {
  if (tail.length <= chars) return tail
  if (chars === 0) return ''
  const lines = tail.split('\n')
  const kept: string[] = []
  for (let i = lines.length - 1, size = 0; i >= 0 && size + lines[i].length + 1 <= chars; i--) {
    kept.unshift(lines[i])
    size += lines[i].length + 1
  }
  return ['[earlier lines left out: the output size limit]', ...kept].join('\n')
}

/** The shortest an error, signal name or warning is cut to: a host can make them any length (an exit signal's name). */
const TEXT_CHARS = 256
const TEXT_CUT_NOTE = ' [cut: the size limit]'

/** The start of `text` within `chars` (never half a surrogate pair), marked when cut. */
function cutText(text: string, chars: number): string {
  if (text.length <= chars) return text
  const end = chars > 0 && (text.charCodeAt(chars - 1) & 0xfc00) === 0xd800 ? chars - 1 : chars
  return `${mask(text.slice(0, end), { cut: true })}${TEXT_CUT_NOTE}`
}

/**
 * A host's result with its tails cut to their last `chars` (captured stdout: 64 times the room), and its
 * errors, signals and warnings to their first `chars` (TEXT_CHARS at least).
 */
function shortened(r: HostResult, chars: number): HostResult {
  if (chars === Infinity) return r
  const text = Math.max(chars, TEXT_CHARS)
  const cut = (t: string | undefined): string | undefined => (t === undefined ? t : cutText(t, text))
  return {
    ...r,
    error: cut(r.error),
    warnings: r.warnings.map((w) => cutText(w, text)),
    steps: r.steps.map((st) => ({
      ...st,
      error: cut(st.error),
      signal: st.signal === null ? null : cutText(st.signal, text),
      stdoutTail: lastLines(st.stdoutTail, chars),
      stderrTail: lastLines(st.stderrTail, chars),
      ...(st.stdout !== undefined ? { stdout: lastLines(st.stdout, chars * 64) } : {})
    }))
  }
}

/**
 * Hosts as JSON (hostJson), in order, within `budget` bytes joined by `separator`: the one shortening
 * of the `results` output and the results file. Tails (and captured stdout) are what grows with a
 * fleet, so they are shortened first (whole lines, the last ones kept) with errors cut alongside; if
 * even no tails do not fit, each host keeps its own fields and its steps are left out (`stepsLeftOut`);
 * past that, hosts are left out (`left` counts them). A try stops as soon as it is over budget.
 */
export function hostsWithin(results: HostResult[], budget: number, forFile = false, separator = ','): { parts: string[]; left: number } {
  const hosts = function* (chars: number, steps: boolean): Generator<string> {
    for (const r of results) {
      const json = hostJson(shortened(r, chars), forFile)
      yield JSON.stringify(steps ? json : { ...json, steps: [], stepsLeftOut: true })
    }
  }
  for (const chars of [Infinity, 4096, 1024, 256, 0]) {
    const { kept, complete } = partsWithin(hosts(chars, true), budget, separator)
    if (complete) return { parts: kept, left: 0 }
  }
  const { kept } = partsWithin(hosts(0, false), budget, separator)
  return { parts: kept, left: results.length - kept.length }
}
