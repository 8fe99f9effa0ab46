import { randomBytes } from 'node:crypto'
import { StringDecoder } from 'node:string_decoder'
import type { Host } from '../plan/settings'
import { knownSecrets, mask } from '../base/secrets'
import { BoundedBytes, LastLines, SharedBudget } from '../base/bounded'

export type StreamName = 'stdout' | 'stderr'

/** A duration as people read it in a log: `34.2s`. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`
}

/** Longest line kept whole; a longer run without a newline is cut so memory stays bounded. */
const MAX_LINE = 64 * 1024
/** Lines of each stream kept per step for reports (annotations, summary, results). */
const TAIL_LINES = 20
/**
 * Bytes those lines may take, and the longest line kept in them: a line longer than that is replaced
 * by a note (never cut: a cut could leave half a secret the runner no longer recognises to mask).
 * With these, reports of any fleet stay small: 48 hosts × 5 steps × 2 streams is at most 3.8 MB.
 */
const TAIL_BYTES = 8192
const TAIL_LINE = 2048

/** Keeps the last lines of a stream within TAIL_LINES and TAIL_BYTES. */
class Tail {
  private readonly last = new LastLines(TAIL_LINES, TAIL_BYTES)

  push(lines: string[]): void {
    this.last.push(
      lines
        .slice(-TAIL_LINES)
        .map((raw) => (raw.length > TAIL_LINE ? `[a line of ${raw.length} characters, not kept here; the log has it]` : raw))
    )
  }

  text(): string {
    return this.last.lines.join('\n')
  }
}

/** How far back from MAX_LINE a cut looks for white space. */
const CUT_WINDOW = 4096

/**
 * Where to cut a line longer than MAX_LINE: after the last white space near the limit, so a token (a
 * secret the runner masks only whole) stays on one line; and never inside a secret the action knows.
 */
function cutPoint(text: string): number {
  const window = text.slice(MAX_LINE - CUT_WINDOW, MAX_LINE)
  const space = Math.max(window.lastIndexOf(' '), window.lastIndexOf('\t'))
  let cut = space >= 0 ? MAX_LINE - CUT_WINDOW + space + 1 : MAX_LINE
  for (let moved = true; moved;) {
    moved = false
    for (const secret of knownSecrets()) {
      const at = text.lastIndexOf(secret, cut - 1)
      if (at > 0 && at < cut && at + secret.length > cut) {
        cut = at
        moved = true
      }
    }
  }
  return cut
}

/** Splits a byte stream into lines (UTF-8 safe across chunks) and keeps a bounded tail of them. */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8')
  private pending = ''
  private readonly tail = new Tail()

  constructor(private readonly onLines: (lines: string[]) => void) {}

  push(chunk: Buffer): void {
    this.emit(this.decoder.write(chunk), false)
  }

  end(): void {
    this.emit(this.decoder.end(), true)
  }

  /** The last lines seen, joined by newlines. */
  tailText(): string {
    return this.tail.text()
  }

  private emit(text: string, final: boolean): void {
    let parts: string[] = []
    // A chunk without a newline only grows the open line: no copy of what came before it.
    if (!final && !text.includes('\n')) this.pending += text
    else {
      parts = (this.pending + text).split('\n')
      this.pending = final ? '' : (parts.pop() as string)
      if (final && parts[parts.length - 1] === '') parts.pop()
    }
    while (this.pending.length > MAX_LINE) {
      const cut = cutPoint(this.pending)
      parts.push(this.pending.slice(0, cut))
      this.pending = this.pending.slice(cut)
    }
    if (parts.length === 0) return
    const lines = parts.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
    this.tail.push(lines)
    this.onLines(lines)
  }
}

/** The output of a host's failing step printed again after a run with several hosts in flight. */
const REPLAY_BYTES = 256 * 1024

/** The last lines of a step's output, both streams in order, within REPLAY_BYTES. */
export class Replay {
  // Lines are at most MAX_LINE, far below REPLAY_BYTES: the last one always stays.
  private readonly last = new LastLines(Infinity, REPLAY_BYTES)

  push(stream: StreamName, lines: string[]): void {
    this.last.push(stream === 'stderr' ? lines.map((line) => `stderr| ${line}`) : lines)
  }

  /** The lines kept, after a note when earlier ones were left out; then empties itself. */
  take(): string[] {
    const { dropped } = this.last
    const lines = dropped ? [`[${dropped} earlier lines left out]`, ...this.last.lines] : this.last.lines
    this.last.clear()
    return lines
  }
}

/** The most of one step's stdout `capture: true` keeps. */
export const CAPTURE_BYTES = 1024 * 1024
/**
 * The most the whole run's captures keep, all steps of all hosts together. Captured stdout goes into
 * both the `captured` and the `results` output, each refused by GitHub past 1 MB; this leaves room
 * for the JSON around it and the tails, and keeps memory flat however large the fleet.
 */
const RUN_CAPTURE_BYTES = 800_000
/** The run's captures, shared by every step that captures. */
const runCaptures = new SharedBudget(RUN_CAPTURE_BYTES)

/**
 * Line ends a capture drops at its end: all of them, as the shell's `$(…)` does, so that
 * `echo 1.2.3` compares equal to '1.2.3' in a workflow's `if:`; `\r\n` too (a pty's line end).
 */
const TRAILING_LINE_ENDS = /(\r?\n)+$/

/**
 * A step's stdout for `capture: true`: its start, up to CAPTURE_BYTES and what is left of the run's
 * budget, without its trailing line ends. Past either, the rest is dropped, counted and named in the text.
 */
export class Capture {
  private readonly held = new BoundedBytes(CAPTURE_BYTES)
  /** Bytes granted by the budget so far (the held part). */
  private granted = 0
  /** Of the bytes dropped, those refused by the run's budget (not the step's own limit). */
  private overRun = 0

  constructor(private readonly budget: SharedBudget = runCaptures) {}

  push(chunk: Buffer): void {
    const want = Math.min(chunk.length, CAPTURE_BYTES - this.granted)
    const got = this.budget.take(want)
    this.granted += got
    this.overRun += want - got
    this.held.push(chunk.subarray(0, got))
    // Counted where a cut is known, so text() also drops a character cut in two.
    this.held.dropped += chunk.length - got
  }

  /**
   * The text (a character cut in two at the limit is dropped), masked, with a last line saying when
   * and why it was cut: a secret's start left at the cut is masked too.
   */
  text(): string {
    const { dropped } = this.held
    if (dropped === 0) return mask(this.held.text().replace(TRAILING_LINE_ENDS, ''))
    const why =
      this.overRun > 0 ? `the run's captures reached ${RUN_CAPTURE_BYTES} bytes` : `the step's capture reached ${CAPTURE_BYTES} bytes`
    return `${mask(this.held.text(), { cut: true })}\n[ssh-fleet: ${dropped} more bytes not captured: ${why}]`
  }
}

/** Where a step's output goes, and how it learns the log has drained. */
export interface OutputSink {
  /** Writes lines to the log; false when the log is backed up. */
  output: (stream: StreamName, lines: string[]) => boolean
  /** Calls back once a backed-up log has drained. */
  whenDrained: (resume: () => void) => void
}

/**
 * Feeds a remote channel's or a local child's stdout and stderr into the log line by line. While the
 * log is backed up both sources pause (for an SSH channel, ssh2 stops granting window and the host
 * stops sending), so memory stays flat however much a step prints. Returns the splitters for the
 * tails and the final flush.
 */
export function streamOutput(
  source: { stdout: NodeJS.ReadableStream; stderr: NodeJS.ReadableStream },
  sink: OutputSink
): { stdout: LineSplitter; stderr: LineSplitter } {
  let congested = false
  let paused = false
  const splitter = (stream: StreamName): LineSplitter =>
    new LineSplitter((lines) => {
      if (!sink.output(stream, lines)) congested = true
    })
  const splitters = { stdout: splitter('stdout'), stderr: splitter('stderr') }
  for (const stream of ['stdout', 'stderr'] as const) {
    source[stream].on('data', (chunk: Buffer) => {
      splitters[stream].push(chunk)
      if (!congested || paused) return
      paused = true
      source.stdout.pause()
      source.stderr.pause()
      sink.whenDrained(() => {
        congested = paused = false
        source.stdout.resume()
        source.stderr.resume()
      })
    })
  }
  return splitters
}

/** Where the log goes: process.stdout, or a test's capture. */
export interface LogSink {
  write(text: string): boolean
  once(event: 'drain', listener: () => void): unknown
}

/**
 * The live log. With several hosts in flight every line carries its host; with one at a time each
 * host's output sits in a group. Text that did not come from the action itself (remote and local
 * output, server messages, step names, file names) is only ever written while the runner's command
 * processing is stopped (`::stop-commands::` with a random token): no line of it, whatever it holds
 * (`::error`, `##[warning]`, a `\r` that starts a new line for the runner), can act as a workflow
 * command. The fence is lifted only for the action's own commands (groups) and at the end.
 */
export class FleetLog {
  private readonly token = randomBytes(16).toString('hex')
  private fenced = false
  private waiting: Array<() => void> = []

  constructor(
    readonly grouped: boolean,
    private readonly sink: LogSink = process.stdout
  ) {}

  /** Writes untrusted text: inside the fence, always. */
  private write(text: string): boolean {
    if (!this.fenced) {
      this.sink.write(`::stop-commands::${this.token}\n`)
      this.fenced = true
    }
    return this.sink.write(text)
  }

  /** Writes one of the action's own commands, outside the fence. */
  private command(line: string): void {
    this.close()
    this.sink.write(`${line}\n`)
  }

  /** Lifts the fence: before the action's own commands, and when the run's log ends. */
  close(): void {
    if (!this.fenced) return
    this.sink.write(`::${this.token}::\n`)
    this.fenced = false
  }

  /**
   * Calls `resume` once the log has drained. A reader of the job log slower than the hosts' output
   * must slow the hosts down (their channels pause), not fill this process's memory.
   */
  whenDrained(resume: () => void): void {
    this.waiting.push(resume)
    if (this.waiting.length > 1) return
    this.sink.once('drain', () => {
      const waiting = this.waiting
      this.waiting = []
      waiting.forEach((f) => f())
    })
  }

  /** Opens a group titled for a host's step; the title is the rest of its line, so a step name must not end it early. */
  private group(host: Host, step: string, more = ''): void {
    this.command(`::group::${host.name} › ${step.replace(/[\r\n]+/g, ' ')}${more}`)
  }

  /** Writes lines, each after `prefix`; a lone `\r` ends a line here as it does for the runner. */
  private lines(prefix: string, lines: string[]): boolean {
    return this.write(
      lines
        .flatMap((line) => line.split('\r'))
        .map((line) => prefix + line + '\n')
        .join('')
    )
  }

  /** A host starts a step: with one host at a time, a group opens for it. */
  hostStarted(host: Host, step: string): void {
    if (this.grouped) this.group(host, step)
  }

  hostFinished(): void {
    if (this.grouped) this.command('::endgroup::')
  }

  /**
   * Lines of remote (or local) output. stderr lines are marked. A lone `\r` (progress bars) ends a
   * line here as it does for the runner, so no text shows without its host. False when backed up.
   */
  output(host: Host, stream: StreamName, lines: string[]): boolean {
    return this.lines((this.grouped ? '' : `[${host.name}] `) + (stream === 'stderr' ? 'stderr| ' : ''), lines)
  }

  /** A line of ssh-fleet's own about a host (connected, step finished, …); it may quote a server. */
  status(host: Host, message: string): void {
    const prefix = `${this.grouped ? '' : `[${host.name}] `}» `
    this.write(
      message
        .split(/\r\n|\r|\n/)
        .map((line) => prefix + line + '\n')
        .join('')
    )
  }

  /**
   * After a run with several hosts in flight: a failed host's output of its failing step once more,
   * whole and in a collapsed group of its own, so it reads without other hosts' lines in between.
   */
  replay(host: Host, step: string, lines: string[]): void {
    this.group(host, step, ': output of the failed step')
    this.lines('', lines)
    this.command('::endgroup::')
  }

  /** Text of the action's own that quotes the plan or a server (step names, file names, scripts). */
  note(text: string): void {
    this.write(`${text}\n`)
  }
}
