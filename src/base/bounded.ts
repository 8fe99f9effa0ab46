/**
 * The one way to hold bytes or lines that came from outside (a host, a server, a proxy command, a
 * file): every holder has a cap, keeps what fits, and counts what it dropped so the report can name
 * it. Nothing here grows with what the other side sends, and each push is O(size of the push).
 */

/** The first `cap` bytes of a stream, and how many more came and were dropped. */
export class BoundedBytes {
  private readonly chunks: Buffer[] = []
  private size = 0
  /** Bytes that came past the cap, dropped. */
  dropped = 0

  constructor(readonly cap: number) {}

  push(chunk: Buffer): void {
    const room = this.cap - this.size
    if (chunk.length > room) this.dropped += chunk.length - Math.max(0, room)
    if (room <= 0) return
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk
    this.chunks.push(kept)
    this.size += kept.length
  }

  /** Whether anything was dropped. */
  get cut(): boolean {
    return this.dropped > 0
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks)
  }

  /** The bytes kept as UTF-8 (a character cut in two at the cap is dropped). */
  text(): string {
    const buf = this.bytes()
    // Back off to the start of a UTF-8 sequence that the cap may have cut.
    let end = buf.length
    if (this.cut) {
      let i = end - 1
      while (i >= 0 && i > end - 4 && (buf[i] & 0xc0) === 0x80) i--
      if (i >= 0 && buf[i] >= 0xc0) {
        const need = buf[i] >= 0xf0 ? 4 : buf[i] >= 0xe0 ? 3 : 2
        if (end - i < need) end = i
      }
    }
    return buf.subarray(0, end).toString('utf8')
  }
}

/**
 * The last lines pushed, within `maxLines` and `maxBytes` (a newline counted per line), dropping the
 * oldest. A queue with a moving head: a push is O(1) per line however many lines came before (an
 * array's shift() per line made a flood of short lines quadratic).
 */
export class LastLines {
  private items: string[] = []
  private head = 0
  private size = 0
  /** Lines dropped from the front since the last clear. */
  dropped = 0

  constructor(
    private readonly maxLines: number,
    private readonly maxBytes: number
  ) {}

  push(lines: string[]): void {
    for (const line of lines) {
      this.items.push(line)
      this.size += line.length + 1
      while (this.items.length - this.head > this.maxLines || (this.size > this.maxBytes && this.items.length - this.head > 0)) {
        this.size -= this.items[this.head].length + 1
        this.head++
        this.dropped++
      }
    }
    // Compact now and then, so the dropped front does not stay in memory.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
  }

  /** The lines kept, oldest first. */
  get lines(): string[] {
    return this.head === 0 ? this.items : this.items.slice(this.head)
  }

  clear(): void {
    this.items = []
    this.head = 0
    this.size = 0
    this.dropped = 0
  }
}

/** A byte budget shared by many holders (e.g. every captured step of a run): what is granted is gone. */
export class SharedBudget {
  constructor(private left: number) {}

  /** Grants up to `want` bytes; 0 once the budget is spent. */
  take(want: number): number {
    const granted = Math.max(0, Math.min(want, this.left))
    this.left -= granted
    return granted
  }

  /** Gives bytes back (a holder that kept less than it was granted). */
  give(bytes: number): void {
    this.left += bytes
  }

  get remaining(): number {
    return this.left
  }
}

/**
 * A short text from outside (a server's DISCONNECT reason, a signal name, a value for an environment)
 * made safe to hold and pass on: NUL and other control characters but newline and tab become `?` (an
 * environment cannot hold NUL; a terminal or a parser should not see the rest), and at most `maxChars`
 * are kept, the cut said.
 */
export function clipText(text: string, maxChars: number): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '?')
  return clean.length > maxChars ? `${clean.slice(0, maxChars)}… (cut at ${maxChars} of ${clean.length} characters)` : clean
}
