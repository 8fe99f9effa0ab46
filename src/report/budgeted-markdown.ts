/** Markdown lines within a byte budget: a part that does not fit is left out, with a note that says so. */
export class BudgetedMarkdown {
  private readonly lines: string[] = []
  private bytes = 0
  /** Room kept for the notes that say what was left out. */
  private static readonly NOTE_BYTES = 512

  constructor(private readonly limit: number) {}

  /** Adds `lines` whole if they fit (keeping room for notes); false when they were left out. */
  add(lines: string[], reserve = BudgetedMarkdown.NOTE_BYTES): boolean {
    const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0)
    if (this.bytes + bytes > this.limit - reserve) return false
    this.lines.push(...lines)
    this.bytes += bytes
    return true
  }

  /** Adds a part per item while they fit; past that, the note `rest(count left)`. */
  each<T>(items: T[], part: (item: T) => string[], rest: (left: number) => string[]): void {
    const i = items.findIndex((item) => !this.add(part(item)))
    if (i >= 0) this.add(rest(items.length - i), 0)
  }

  /** Bytes that can still be added, keeping room for notes. */
  get room(): number {
    return this.limit - BudgetedMarkdown.NOTE_BYTES - this.bytes
  }

  text(): string {
    return this.lines.join('\n') + '\n'
  }
}
