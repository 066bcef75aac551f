// A strict RFC 8259 JSON parser. JSON.parse keeps the last of duplicate keys silently, which would
// let two readers of one signed statement see different ledgers; this parser rejects them.
//
// - Input bytes must be valid UTF-8 (a BOM is not skipped: it is an error like any other byte
//   before the value).
// - Escaped lone surrogates (`"\ud800"`) are rejected, so every accepted string is valid Unicode,
//   the same set that valid UTF-8 input can spell directly.
// - Objects have a null prototype: `__proto__` or `constructor` keys are ordinary own keys.
// - Nesting deeper than MAX_DEPTH is an error (checked before recursing, so no stack overflow).
// - Numbers become JS numbers (precision beyond 2^53 is lost; callers needing integers check
//   Number.isSafeInteger). Numbers that overflow to Infinity are rejected.
// - Time is linear in the input size.
import { invalid } from '../errors.js'
import { clip } from '../text/sanitize.js'

export const MAX_DEPTH = 64

type JsonObject = { [key: string]: JsonValue }
type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject

/** `what` names the document in error messages (e.g. 'statement', 'SBA'). */
export function parseStrictJson(input: Uint8Array | string, what: string): unknown {
  let text: string
  if (typeof input === 'string') {
    text = input
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input)
    } catch {
      throw invalid(`${what}: not valid UTF-8`, undefined, { code: 'JSON_SYNTAX' })
    }
  }
  const parser = new Parser(text, what)
  // Decoded UTF-8 cannot hold a lone surrogate; a string given directly is checked once here.
  if (typeof input === 'string' && LONE_SURROGATE.test(text)) {
    parser.fail('text contains a lone UTF-16 surrogate')
  }
  return parser.parseDocument()
}

/** A parsed JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** `a.b[0].c`, with keys that are not identifiers quoted: `env['X Y']`. */
export function formatJsonPath(path: readonly (string | number)[]): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(part)) out += out === '' ? part : `.${part}`
    else out += `[${JSON.stringify(part)}]`
  }
  return out
}

// The letters after a backslash that RFC 8259 allows besides 'u', as char codes.
const SIMPLE_ESCAPES = new Set([...'"\\/bfnrt'].map(c => c.charCodeAt(0)))

// In a /u regex a surrogate code unit only matches when it is not half of a valid pair.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u

const QUOTE = 0x22
const BACKSLASH = 0x5c
const MINUS = 0x2d
const ZERO = 0x30
const NINE = 0x39

const isDigit = (c: number) => c >= ZERO && c <= NINE

class Parser {
  private pos = 0
  // path[d] is the key or index of the value being parsed at depth d + 1, undefined between
  // values: cheaper than pushing and popping for every value, and enough to name the JSON path.
  private readonly path: (string | number | undefined)[] = []

  constructor(
    private readonly text: string,
    private readonly what: string
  ) {}

  parseDocument(): unknown {
    this.skipWhitespace()
    const value = this.parseValue(0)
    this.skipWhitespace()
    if (this.pos < this.text.length) this.fail('unexpected data after the JSON value')
    return value
  }

  private parseValue(depth: number): JsonValue {
    const c = this.text.charCodeAt(this.pos)
    switch (c) {
      case 0x7b: // {
        return this.parseObject(depth + 1)
      case 0x5b: // [
        return this.parseArray(depth + 1)
      case QUOTE:
        return this.parseString()
      case 0x74: // t
        return this.parseLiteral('true', true)
      case 0x66: // f
        return this.parseLiteral('false', false)
      case 0x6e: // n
        return this.parseLiteral('null', null)
      default:
        if (c === MINUS || isDigit(c)) return this.parseNumber()
        return this.fail(`unexpected ${this.describeHere()}`)
    }
  }

  private parseObject(depth: number): JsonObject {
    this.checkDepth(depth)
    this.pos++
    const object = Object.create(null) as JsonObject
    this.skipWhitespace()
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++
      return object
    }
    for (;;) {
      this.skipWhitespace()
      if (this.text.charCodeAt(this.pos) !== QUOTE) this.fail('expected a string key')
      const key = this.parseString()
      if (Object.hasOwn(object, key)) this.fail(`duplicate key ${quote(key)}`)
      this.skipWhitespace()
      this.expect(':')
      this.skipWhitespace()
      this.path[depth - 1] = key
      object[key] = this.parseValue(depth)
      this.path[depth - 1] = undefined
      this.skipWhitespace()
      if (this.text.charCodeAt(this.pos) === 0x2c) {
        this.pos++
        continue
      }
      this.expect('}')
      return object
    }
  }

  private parseArray(depth: number): JsonValue[] {
    this.checkDepth(depth)
    this.pos++
    const array: JsonValue[] = []
    this.skipWhitespace()
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++
      return array
    }
    for (;;) {
      this.skipWhitespace()
      this.path[depth - 1] = array.length
      array.push(this.parseValue(depth))
      this.path[depth - 1] = undefined
      this.skipWhitespace()
      if (this.text.charCodeAt(this.pos) === 0x2c) {
        this.pos++
        continue
      }
      this.expect(']')
      return array
    }
  }

  private parseString(): string {
    const text = this.text
    const start = this.pos
    let pos = start + 1 // after the opening quote
    let escaped = false
    let escapedSurrogate = false
    for (;;) {
      const c = text.charCodeAt(pos)
      if (c === QUOTE) break
      if (c >= 0x20 && c !== BACKSLASH) {
        pos++
        continue
      }
      this.pos = pos
      if (Number.isNaN(c)) this.fail('unterminated string')
      if (c < 0x20) this.fail(`unescaped control character ${this.describeHere()} in a string`)
      escaped = true
      const e = text.charCodeAt(pos + 1)
      if (e === 0x75) {
        // \uXXXX
        const hex = text.slice(pos + 2, pos + 6)
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape')
        const unit = parseInt(hex, 16)
        escapedSurrogate ||= unit >= 0xd800 && unit <= 0xdfff
        pos += 6
      } else if (SIMPLE_ESCAPES.has(e)) {
        pos += 2
      } else {
        this.fail('invalid escape sequence')
      }
    }
    this.pos = pos + 1
    // The token is now known to be a valid JSON string literal: let the native decoder unescape it.
    const value = escaped
      ? (JSON.parse(text.slice(start, pos + 1)) as string)
      : text.slice(start + 1, pos)
    if (escapedSurrogate && LONE_SURROGATE.test(value)) {
      this.pos = start
      this.fail('string contains a lone UTF-16 surrogate')
    }
    return value
  }

  private parseNumber(): number {
    // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    const text = this.text
    const start = this.pos
    let pos = start
    if (text.charCodeAt(pos) === MINUS) pos++
    if (text.charCodeAt(pos) === ZERO) pos++
    else if (isDigit(text.charCodeAt(pos))) while (isDigit(text.charCodeAt(pos))) pos++
    else this.failAt(pos, 'invalid number')
    if (text.charCodeAt(pos) === 0x2e) {
      pos++
      if (!isDigit(text.charCodeAt(pos))) this.failAt(pos, 'invalid number: digit expected after .')
      while (isDigit(text.charCodeAt(pos))) pos++
    }
    if ((text.charCodeAt(pos) | 0x20) === 0x65) {
      pos++
      const sign = text.charCodeAt(pos)
      if (sign === 0x2b || sign === MINUS) pos++
      if (!isDigit(text.charCodeAt(pos)))
        this.failAt(pos, 'invalid number: digit expected in exponent')
      while (isDigit(text.charCodeAt(pos))) pos++
    }
    this.pos = pos
    const value = Number(text.slice(start, pos))
    if (!Number.isFinite(value))
      this.fail(`number out of range: ${text.slice(start, Math.min(pos, start + 40))}`)
    return value
  }

  private parseLiteral<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail(`unexpected ${this.describeHere()}`)
    this.pos += word.length
    return value
  }

  private checkDepth(depth: number): void {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`)
  }

  private expect(c: string): void {
    if (this.text[this.pos] !== c) this.fail(`expected '${c}' but found ${this.describeHere()}`)
    this.pos++
  }

  private skipWhitespace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.pos)
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return
      this.pos++
    }
  }

  private failAt(pos: number, message: string): never {
    this.pos = pos
    return this.fail(message)
  }

  fail(message: string): never {
    const end = this.path.indexOf(undefined)
    const where = formatJsonPath(
      (end === -1 ? this.path : this.path.slice(0, end)) as (string | number)[]
    )
    throw invalid(
      `${this.what}: ${where === '' ? '' : `${where}: `}${message} (${this.location()})`,
      undefined,
      { code: 'JSON_SYNTAX' }
    )
  }

  private location(): string {
    let line = 1
    let lineStart = 0
    for (
      let i = this.text.indexOf('\n');
      i !== -1 && i < this.pos;
      i = this.text.indexOf('\n', i + 1)
    ) {
      line++
      lineStart = i + 1
    }
    return `line ${line}, column ${this.pos - lineStart + 1}`
  }

  private describeHere(): string {
    if (this.pos >= this.text.length) return 'end of input'
    const code = this.text.charCodeAt(this.pos)
    return code < 0x20 || code === 0x7f || code === 0xfeff
      ? `character U+${code.toString(16).padStart(4, '0').toUpperCase()}`
      : `'${this.text[this.pos]}'`
  }
}

function quote(key: string): string {
  return `'${clip(key)}'`
}
