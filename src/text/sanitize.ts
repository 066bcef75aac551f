// Every human-facing string that may carry text from a ledger, a build, a file or a server goes
// through this module before it reaches a log line, an annotation, an output or the job summary.
//
// Two readers must be fooled by none of it: the GitHub runner, which reads a line as a workflow
// command when it starts with `::` after .NET's `String.TrimStart()` (Char.IsWhiteSpace, a larger
// set than JavaScript's `\s`: it has U+0085) or holds `##[` anywhere; and a person, who must not
// see a file name reordered by bidirectional controls or a message split by a line break.

/** .NET `Char.IsWhiteSpace`: what the runner trims before it looks for `::`. */
const DOTNET_WHITESPACE =
  '\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000'

/**
 * Control characters (C0, DEL, C1), line and paragraph separators, and the bidirectional
 * marks, embeddings, overrides and isolates (U+061C, U+200E/F, U+202A–E, U+2066–9).
 */
const UNSAFE =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/** `\uXXXX` for a character that must not act. */
const visible = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`

/** The text with every unsafe character written as `\uXXXX`: one line, shown in logical order. */
export function escapeUnsafe(text: string): string {
  return text.replace(UNSAFE, visible)
}

/** Whether `c` is white space to .NET (the runner's trimming). */
export function isDotnetWhiteSpace(c: string): boolean {
  return c.length === 1 && DOTNET_WHITESPACE.includes(c)
}

/**
 * One inert log line: unsafe characters escaped, a `::` at the start (after the white space
 * .NET trims) preceded by a backslash, and every `##[` broken.
 */
export function logLine(text: string): string {
  const line = escapeUnsafe(text).replace(/##\[/g, '##\\[')
  let start = 0
  while (start < line.length && isDotnetWhiteSpace(line[start])) start++
  return line.startsWith('::', start) ? `${line.slice(0, start)}\\${line.slice(start)}` : line
}

/** Several lines, each made inert. */
export function logLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/).map(logLine)
}

/** A short echo of outside text for a message: at most `max` characters, unsafe ones escaped. */
export function clip(text: string, max = 80): string {
  return escapeUnsafe(text.length > max ? `${text.slice(0, max)}…` : text)
}

// Layout characters a <pre> may keep, as entities (a raw blank line would end the summary's
// HTML block and let what follows render as Markdown).
const HTML_SPECIAL = /[&<>"'`\t\n]/g

/**
 * Text as inert HTML for the job summary: markup characters and line breaks as entities,
 * every other unsafe character as visible `\uXXXX` (an entity would still reorder the text).
 */
export function escapeHtml(text: string): string {
  return text
    .replace(UNSAFE, c => (c === '\n' || c === '\t' ? c : visible(c)))
    .replace(HTML_SPECIAL, c => `&#${c.charCodeAt(0)};`)
}
