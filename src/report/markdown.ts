/**
 * The one place text that did not come from the action becomes Markdown for the job summary. Nothing
 * of it may render as Markdown or HTML (a server's `## Deployment approved ![x](…)` stays text), and
 * text that may hold a secret is never altered, so the runner's masker still finds the secret whole.
 */

/**
 * Untrusted text as a fenced code block, byte for byte: its fence is longer than any run of backticks
 * in it, so no line inside can close it, and nothing inside is Markdown or HTML. For every text that
 * may quote a host or a server (errors, output tails, the plan).
 */
export function codeBlock(text: string): string[] {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length))
  const fence = '`'.repeat(Math.max(3, longest + 1))
  return [fence, ...text.split(/\r?\n/), fence]
}

/**
 * A short name (a host's, a step's) inline, in a table cell or a heading: characters that Markdown or
 * HTML treat specially are escaped and line breaks become spaces. Escaping changes bytes, so this is
 * never for text that may hold a secret: that goes in a codeBlock.
 */
export function inline(text: string): string {
  // Emphasis, code, links, images, strikethrough, table cells, HTML: nothing else can start Markdown mid-line.
  return text.replace(/[\r\n]+/g, ' ').replace(/[&<>\\`*_[\]!|~]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c] ?? `\\${c}`)
}
