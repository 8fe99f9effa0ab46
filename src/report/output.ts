import { randomBytes } from 'node:crypto'
import { StringDecoder } from 'node:string_decoder'
import type { Host } from '../plan/settings'

export type StreamName = 'stdout' | 'stderr'

/** A duration as people read it in a log: `34.2s`. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`
}

/** Longest line kept whole; a longer run without a newline is cut so memory stays bounded. */
const MAX_LINE = 64 * 1024
/** Lines of each stream kept per step for reports. */
const TAIL_LINES = 20

/** Splits a byte stream into lines (UTF-8 safe across chunks) and keeps a bounded tail of them. */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8')
  private pending = ''
  private readonly tail: string[] = []

  constructor(private readonly onLines: (lines: string[]) => void) {}

  push(chunk: Buffer): void {
    this.emit(this.decoder.write(chunk), false)
  }

  end(): void {
    this.emit(this.decoder.end(), true)
  }

  /** The last lines seen, joined by newlines. */
  tailText(): string {
    return this.tail.join('\n')
  }

  private emit(text: string, final: boolean): void {
    const parts = (this.pending + text).split('\n')
    this.pending = final ? '' : (parts.pop() as string)
    if (final && parts[parts.length - 1] === '') parts.pop()
    while (this.pending.length > MAX_LINE) {
      parts.push(this.pending.slice(0, MAX_LINE))
      this.pending = this.pending.slice(MAX_LINE)
    }
    if (parts.length === 0) return
    const lines = parts.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
    this.tail.push(...lines.slice(-TAIL_LINES))
    if (this.tail.length > TAIL_LINES) this.tail.splice(0, this.tail.length - TAIL_LINES)
    this.onLines(lines)
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
 * host's output sits in a group. Remote output never reaches the runner as workflow commands: a
 * prefix keeps `::` off the start of the line, and a group is fenced with stop-commands.
 */
export class FleetLog {
  private readonly token = randomBytes(16).toString('hex')
  private waiting: Array<() => void> = []

  constructor(
    readonly grouped: boolean,
    private readonly sink: LogSink = process.stdout
  ) {}

  private write(text: string): boolean {
    return this.sink.write(text)
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

  /** A host starts a step: with one host at a time, a group opens for it. */
  hostStarted(host: Host, step: string): void {
    if (this.grouped) this.write(`::group::${host.name} › ${step}\n::stop-commands::${this.token}\n`)
  }

  hostFinished(): void {
    if (this.grouped) this.write(`::${this.token}::\n::endgroup::\n`)
  }

  /** Lines of remote (or local) output. stderr lines are marked. False when the log is backed up. */
  output(host: Host, stream: StreamName, lines: string[]): boolean {
    const prefix = (this.grouped ? '' : `[${host.name}] `) + (stream === 'stderr' ? 'stderr| ' : '')
    return this.write(lines.map((line) => prefix + line + '\n').join(''))
  }

  /** A line of ssh-fleet's own about a host (connected, step finished, …). */
  status(host: Host, message: string): void {
    this.write(`${this.grouped ? '' : `[${host.name}] `}» ${message}\n`)
  }
}
