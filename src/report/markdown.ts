import { mask } from '../base/secrets'

/**
 * The one place text that did not come from the action becomes Markdown for the job summary. Nothing
 * of it may render as Markdown or HTML (a server's `## Deployment approved ![x](…)` stays text, a
 * `https://` or `www.` or `user@host.example` is no link), and every secret in it is masked first.
 */

/**
 * Untrusted text as a fenced code block, byte for byte but masked: its fence is longer than any run
 * of backticks in it, so no line inside can close it, and nothing inside is Markdown or HTML. For every
 * text that may quote a host or a server at length (errors, output tails, the plan).
 */
export function codeBlock(text: string): string[] {
  const masked = mask(text)
  const longest = Math.max(0, ...(masked.match(/`+/g) ?? []).map((run) => run.length))
  const fence = '`'.repeat(Math.max(3, longest + 1))
  return [fence, ...masked.split(/\r?\n/), fence]
}

/** Control characters (NUL included) are dropped; line breaks of any kind become a space. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g
const BREAKS = /[\t\r\n\u2028\u2029]+/g
/** HTML's characters, and brackets: as entities no link or image can open or close, and `](` never shows. */
const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '[': '&#91;', ']': '&#93;' }
/**
 * ASCII punctuation that can start or end Markdown mid-line: emphasis, code, strikethrough, table
 * cells, headings, math, and the `:` and `@` that GFM's autolinks need.
 */
const SPECIAL = /[\\`*_!|~#:@$]/g

/**
 * A short text (a host's name, a step's, a signal's) inline, in a table cell or a heading: masked,
 * control characters dropped, line breaks made spaces, HTML's characters as entities and Markdown's
 * backslash-escaped, so it shows as written and renders as nothing but text.
 */
export function inline(text: string): string {
  return (
    mask(text)
      .replace(CONTROL, '')
      .replace(BREAKS, ' ')
      .replace(SPECIAL, '\\$&')
      // After the backslashes: an entity's own `#` must stay as it is.
      .replace(/[&<>[\]]/g, (c) => ENTITIES[c])
      .replace(/(www)\./gi, '$1\\.')
  )
}

/**
 * A GFM table: the header row, its rule, then a row per entry, every cell through inline(). The only
 * way a table is built, so no cell can be forgotten.
 */
export function table(header: string[], rows: string[][]): string[] {
  return [row(header), `| ${header.map(() => '---').join(' | ')} |`, ...rows.map(row)]
}

/** One row of a table(), every cell through inline(): for a table whose rows are added as they fit. */
export function row(cells: string[]): string {
  return `| ${cells.map(inline).join(' | ')} |`
}
