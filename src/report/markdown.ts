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

/** The most of one text a Mermaid label shows: a bar's label is one line of a picture. */
const MERMAID_CHARS = 60
/**
 * Characters a Mermaid label keeps: letters and digits of any script, and punctuation that is no
 * syntax in a gantt chart. Everything else (`:` `;` `#` `%` `{` `}` backticks, quotes, `<`, control
 * and format characters, line breaks) is replaced: they end a task's name, start a comment, an
 * entity or a directive (`%%{init}`), or close the code block.
 */
const MERMAID_UNSAFE = /[^\p{L}\p{N} .,@+=()[\]/_…∶-]/gu
/**
 * Words Mermaid reads as a statement when a line starts with them (gantt's and every diagram's
 * directives): a label starting with one is prefixed, so it stays a label.
 */
const MERMAID_KEYWORDS =
  /^(click|call|href|section|title|gantt|dateformat|axisformat|tickinterval|excludes|includes|todaymarker|weekday|weekend|inclusiveenddates|topaxis|displaymode|acctitle|accdescr|style|classdef|class|link|callback|end)\b/i

/** How a label may start: a letter, a digit, `[` (an IPv6 host), `(` or `_`; never `---` (front matter) or the like. */
const MERMAID_START = /^[\p{L}\p{N}[(_]/u

/**
 * The one place text that did not come from the action becomes part of a Mermaid diagram (a host's
 * name, a step's, a title): masked, cut to MERMAID_CHARS, only characters with no meaning in Mermaid
 * kept (a `:` becomes `∶`, so `host:22` still reads), never empty, never starting with a directive,
 * keyword or punctuation, and never a bare property name of JavaScript objects (`__proto__`,
 * `constructor`) that a renderer may keep labels in.
 */
export function mermaidText(text: string): string {
  const chars = [...mask(text).replace(BREAKS, ' ')]
  const flat = chars.length > MERMAID_CHARS ? `${chars.slice(0, MERMAID_CHARS - 1).join('')}…` : chars.join('')
  const safe = flat.replace(/:/g, '∶').replace(MERMAID_UNSAFE, '_').trim()
  if (safe === '' || MERMAID_KEYWORDS.test(safe) || !MERMAID_START.test(safe) || safe in Object.prototype) return `‣ ${safe}`
  return safe
}
