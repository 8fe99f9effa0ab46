/**
 * Bytes an upload holds at once on one host: file data read from the runner and sent, not yet
 * acknowledged by the host. Its files in flight share it, first come first served, so memory stays
 * bounded per host whatever the tree (2,000 small files or a few of 20 MB).
 */
export class ByteBudget {
  private free: number
  private readonly waiting: Array<{ bytes: number; go: () => void }> = []

  constructor(readonly total: number) {
    this.free = total
  }

  /** Waits until `bytes` (at most `total`) are free and takes them; resolves to their release. */
  async take(bytes: number): Promise<() => void> {
    if (bytes > this.total) throw new RangeError(`${bytes} bytes asked of a budget of ${this.total}`)
    if (this.waiting.length === 0 && this.free >= bytes) this.free -= bytes
    else await new Promise<void>((go) => this.waiting.push({ bytes, go }))
    let released = false
    return () => {
      if (released) return
      released = true
      this.free += bytes
      for (let head = this.waiting[0]; head && this.free >= head.bytes; head = this.waiting[0]) {
        this.free -= head.bytes
        this.waiting.shift()
        head.go()
      }
    }
  }
}
