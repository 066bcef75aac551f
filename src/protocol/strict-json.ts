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

export const MAX_DEPTH = 64

export type JsonObject = { [key: string]: JsonValue }
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject

/** `what` names the document in error messages (e.g. 'statement', 'SBA'). */
export function parseStrictJson(input: Uint8Array | string, what: string): unknown {
  let text: string
  if (typeof input === 'string') {
    text = input
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input)
    } catch {
      throw invalid(`${what}: not valid UTF-8`)
    }
  }
  return new Parser(text, what).parseDocument()
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

const ESCAPES: Record<string, string> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t'
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y
// Characters a string may contain unescaped: anything but '"', '\\' and controls U+0000..U+001F.
// eslint-disable-next-line no-control-regex -- RFC 8259 forbids raw controls in strings
const PLAIN_RUN = /[^"\\\u0000-\u001f]*/y

class Parser {
  private pos = 0
  private readonly path: (string | number)[] = []

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
    const c = this.text[this.pos]
    switch (c) {
      case '{':
        return this.parseObject(depth + 1)
      case '[':
        return this.parseArray(depth + 1)
      case '"':
        return this.parseString()
      case 't':
        return this.parseLiteral('true', true)
      case 'f':
        return this.parseLiteral('false', false)
      case 'n':
        return this.parseLiteral('null', null)
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.parseNumber()
        return this.fail(c === undefined ? 'unexpected end of input' : `unexpected ${describe(c)}`)
    }
  }

  private parseObject(depth: number): JsonObject {
    this.checkDepth(depth)
    this.pos++
    const object = Object.create(null) as JsonObject
    this.skipWhitespace()
    if (this.text[this.pos] === '}') {
      this.pos++
      return object
    }
    for (;;) {
      this.skipWhitespace()
      if (this.text[this.pos] !== '"') this.fail('expected a string key')
      const key = this.parseString()
      if (Object.hasOwn(object, key)) {
        this.fail(`duplicate key ${quote(key)}`)
      }
      this.skipWhitespace()
      this.expect(':')
      this.skipWhitespace()
      this.path.push(key)
      object[key] = this.parseValue(depth)
      this.path.pop()
      this.skipWhitespace()
      if (this.text[this.pos] === ',') {
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
    if (this.text[this.pos] === ']') {
      this.pos++
      return array
    }
    for (;;) {
      this.skipWhitespace()
      this.path.push(array.length)
      array.push(this.parseValue(depth))
      this.path.pop()
      this.skipWhitespace()
      if (this.text[this.pos] === ',') {
        this.pos++
        continue
      }
      this.expect(']')
      return array
    }
  }

  private parseString(): string {
    this.pos++ // opening quote
    let out = ''
    for (;;) {
      PLAIN_RUN.lastIndex = this.pos
      PLAIN_RUN.exec(this.text)
      out += this.text.slice(this.pos, PLAIN_RUN.lastIndex)
      this.pos = PLAIN_RUN.lastIndex
      const c = this.text[this.pos]
      if (c === '"') {
        this.pos++
        if (hasLoneSurrogate(out)) this.fail('string contains a lone UTF-16 surrogate')
        return out
      }
      if (c === undefined) this.fail('unterminated string')
      if (c !== '\\') this.fail(`unescaped control character ${describe(c)} in a string`)
      const e = this.text[this.pos + 1]
      if (e === 'u') {
        const hex = this.text.slice(this.pos + 2, this.pos + 6)
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape')
        out += String.fromCharCode(parseInt(hex, 16))
        this.pos += 6
      } else if (e !== undefined && Object.hasOwn(ESCAPES, e)) {
        out += ESCAPES[e]
        this.pos += 2
      } else {
        this.fail('invalid escape sequence')
      }
    }
  }

  private parseNumber(): number {
    NUMBER.lastIndex = this.pos
    const match = NUMBER.exec(this.text)
    if (match === null) return this.fail('invalid number')
    this.pos = NUMBER.lastIndex
    const value = Number(match[0])
    if (!Number.isFinite(value)) this.fail(`number out of range: ${match[0].slice(0, 40)}`)
    return value
  }

  private parseLiteral<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos))
      this.fail(`unexpected ${describe(this.text[this.pos])}`)
    this.pos += word.length
    return value
  }

  private checkDepth(depth: number): void {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`)
  }

  private expect(c: string): void {
    const found = this.text[this.pos]
    if (found !== c) {
      this.fail(
        `expected '${c}' but found ${found === undefined ? 'end of input' : describe(found)}`
      )
    }
    this.pos++
  }

  private skipWhitespace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.pos)
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return
      this.pos++
    }
  }

  private fail(message: string): never {
    const where = formatJsonPath(this.path)
    throw invalid(
      `${this.what}: ${where === '' ? '' : `${where}: `}${message} (${this.location()})`
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
}

// In a /u regex a surrogate code unit only matches when it is not half of a valid pair.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u

function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s)
}

function quote(key: string): string {
  return `'${key.length > 80 ? `${key.slice(0, 80)}…` : key}'`
}

function describe(c: string | undefined): string {
  if (c === undefined) return 'end of input'
  const code = c.charCodeAt(0)
  return code < 0x20 || code === 0x7f || code === 0xfeff
    ? `character U+${code.toString(16).padStart(4, '0').toUpperCase()}`
    : `'${c}'`
}
