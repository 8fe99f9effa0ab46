import { randomBytes } from 'node:crypto'
import { BoundedBytes, clipText } from '../base/bounded'

/**
 * A command's stdout framed by a random marker line the command prints before its answer. A login
 * shell that prints for every session (a ~/.bashrc greeting, nologin's "This account is currently not
 * available.") prints before the command runs: those bytes land before the marker and are kept apart
 * as the shell's noise, never read as the answer. No marker at all: the command never ran.
 */

/** Bytes of the login shell's noise kept to be named in a note or an error (the rest is counted). */
const NOISE_CAP = 512

/** A fresh marker and the shell line that prints it. */
export function answerMarker(): { marker: string; print: string } {
  const token = randomBytes(8).toString('hex')
  // Printed in two pieces: a shell that echoes the command line (set -v in a profile) cannot fake it.
  return { marker: `ssh-fleet-answer-${token}\n`, print: `printf '%s%s\\n' ssh-fleet-answer- ${token}` }
}

export class FramedAnswer {
  /** What came before the marker: the login shell's own output. */
  readonly noise = new BoundedBytes(NOISE_CAP)
  /** What came after it, within `cap`. */
  readonly answer: BoundedBytes
  private readonly marker: Buffer
  /** The tail not yet known to be noise: it may be the start of the marker. */
  private pending = Buffer.alloc(0)
  private seen = false

  constructor(marker: string, cap: number) {
    this.marker = Buffer.from(marker)
    this.answer = new BoundedBytes(cap)
  }

  /** Whether the marker came: the command ran, and `answer` is all its own. */
  get framed(): boolean {
    return this.seen
  }

  push(chunk: Buffer): void {
    if (this.seen) return this.answer.push(chunk)
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk
    const at = buf.indexOf(this.marker)
    if (at >= 0) {
      this.noise.push(buf.subarray(0, at))
      this.seen = true
      this.pending = Buffer.alloc(0)
      this.answer.push(buf.subarray(at + this.marker.length))
      return
    }
    // Memory stays at the marker's length however much the shell prints.
    const keep = Math.max(0, buf.length - (this.marker.length - 1))
    this.noise.push(buf.subarray(0, keep))
    this.pending = Buffer.from(buf.subarray(keep))
  }

  /** The stream ended: a tail that never became the marker is noise too. */
  end(): void {
    if (!this.seen) this.noise.push(this.pending)
    this.pending = Buffer.alloc(0)
  }
}

/** The shell's noise as one quoted, cleaned line (control characters as `?`, newlines as `\n`), its cut said. */
export function shownNoise(noise: BoundedBytes): string {
  const more = noise.cut ? ` and ${noise.dropped} more bytes` : ''
  return `${JSON.stringify(clipText(noise.text(), NOISE_CAP))}${more}`
}
