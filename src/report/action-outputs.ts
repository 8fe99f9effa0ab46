/** The action's outputs (action.yml) as GitHub takes them: each within its size limit, every secret masked. */
import * as core from '@actions/core'
import { Outputs } from './constants'
import { hostFailed, type HostResult } from '../base/results'
import { jsonBytes, jsonPrefix, partsWithin } from './json-budget'
import { mask, maskDeep } from '../base/secrets'
import { hostsWithin } from './results-budget'

/** GitHub takes an output of at most 1 MB. */
const OUTPUT_BYTES = 1_000_000

/** Room for the entry that counts hosts left out (`{"hostsLeftOut":N}`). */
const LEFT_OUT_ROOM = 64

/**
 * The `results` output: one object per host, in the order of `hosts`, always within `budget` bytes
 * (hostsWithin). Hosts left out, if any, are counted by a last entry `{"hostsLeftOut": N}`.
 */
export function resultsJson(results: HostResult[], budget = OUTPUT_BYTES): string {
  const { parts, left } = hostsWithin(results, budget - 2 - LEFT_OUT_ROOM)
  return `[${[...parts, ...(left ? [JSON.stringify({ hostsLeftOut: left })] : [])].join(',')}]`
}

/**
 * Host names, a line each, within `budget` bytes (100k hosts' names pass GitHub's 1 MB); past it, a
 * last line (no host entry: it has spaces) says how many were left out.
 */
function hostLines(hosts: HostResult[], budget = OUTPUT_BYTES): string {
  const { kept } = partsWithin(
    hosts.map((r) => r.host),
    budget - LEFT_OUT_ROOM,
    '\n'
  )
  const left = hosts.length - kept.length
  return [...kept, ...(left ? [`(${left} more hosts left out: the output's size limit)`] : [])].join('\n')
}

/** The last line of a captured stdout cut to fit the `captured` output. */
const CAPTURE_CUT_NOTE = "\n[ssh-fleet: cut to fit the captured output's size limit]"
/** Room kept for that note in each cut stdout, and for a mask that is longer than the piece it hides. */
const CAPTURE_CUT_ROOM = CAPTURE_CUT_NOTE.length + 8

/**
 * The `captured` output: `{"<host>": {"<step>": "<stdout>"}}` for every step with `capture: true`,
 * failed ones too, within `budget` bytes. Sizes are counted before anything is built; when the whole
 * does not fit, the largest stdouts are cut to an equal share (their start kept, marked), the smaller
 * ones kept whole.
 */
export function capturedJson(results: HostResult[], budget = OUTPUT_BYTES): string {
  // host → step → stdout (a step name given twice: the last one), keyed by Map: a host named __proto__ is a host.
  const byHost = new Map<string, Map<string, string>>()
  for (const r of results)
    for (const s of r.steps) {
      if (s.stdout === undefined) continue
      const steps = byHost.get(r.host) ?? new Map<string, string>()
      byHost.set(r.host, steps.set(s.name, s.stdout))
    }
  const entries = [...byHost.values()].flatMap((steps) => [...steps].map(([step, text]) => ({ steps, step, text, bytes: jsonBytes(text) })))
  // Braces, keys, colons and commas.
  let frame = 2
  for (const [host, steps] of byHost) {
    frame += jsonBytes(host) + 3
    for (const step of steps.keys()) frame += jsonBytes(step) + 2
  }
  let left = budget - frame
  if (entries.reduce((n, e) => n + e.bytes, 0) > left) {
    // Equal shares, smallest first: what a small stdout does not use goes to the larger ones.
    entries.sort((a, b) => a.bytes - b.bytes)
    entries.forEach((e, i) => {
      const share = Math.floor(left / (entries.length - i))
      if (e.bytes <= share) {
        left -= e.bytes
        return
      }
      left -= share
      const { end } = jsonPrefix(e.text, Math.max(0, share - CAPTURE_CUT_ROOM))
      e.steps.set(e.step, end > 0 ? `${mask(e.text.slice(0, end), { cut: true })}${CAPTURE_CUT_NOTE}` : '')
    })
  }
  const json = `{${[...byHost]
    .map(
      ([host, steps]) =>
        `${JSON.stringify(host)}:{${[...steps].map(([step, text]) => `${JSON.stringify(step)}:${JSON.stringify(text)}`).join(',')}}`
    )
    .join(',')}}`
  // Only names alone past the budget (tens of thousands of captured steps) get here.
  return Buffer.byteLength(json) <= budget ? json : '{}'
}

/**
 * The outputs, masked: a host can print a secret (echo the password), and the runner masks only the
 * log. Hosts' names and every text of their results go through the one masker first.
 */
export function setOutputs(unmasked: HostResult[]): void {
  const results = maskDeep(unmasked)
  core.setOutput(Outputs.Results, resultsJson(results))
  core.setOutput(Outputs.Captured, capturedJson(results))
  core.setOutput(Outputs.Succeeded, hostLines(results.filter((r) => r.status === 'success')))
  core.setOutput(Outputs.Failed, hostLines(results.filter(hostFailed)))
}
