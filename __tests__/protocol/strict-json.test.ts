import { describe, expect, it } from '@jest/globals'
import { MAX_DEPTH, parseStrictJson } from '../../src/protocol/strict-json.js'

const bytes = (s: string) => new TextEncoder().encode(s)
const rejects = (input: string | Uint8Array, message: string) =>
  expect(() => parseStrictJson(input, 'doc')).toThrow(
    expect.objectContaining({ verdict: 'invalid', message: expect.stringContaining(message) })
  )

describe('parseStrictJson', () => {
  it('parses every JSON type like JSON.parse', () => {
    const text =
      '{"a": [1, -2.5e3, 0, true, false, null, "x\\u00e9\\n\\"\\\\\\/"], "b": {}, "c": []}'
    expect(parseStrictJson(bytes(text), 'doc')).toEqual(JSON.parse(text))
    expect(parseStrictJson(' \t\r\n"top" \n', 'doc')).toBe('top')
  })

  it('rejects duplicate keys at the top and nested, naming the path', () => {
    rejects('{"a": 1, "a": 2}', "doc: duplicate key 'a'")
    rejects('{"p": {"b": [{"c": 1}, {"c": 1, "c": 2}]}}', "doc: p.b[1]: duplicate key 'c'")
    rejects(
      '{"predicate": {"build": {"command": [], "command": ["x"]}}}',
      "predicate.build: duplicate key 'command'"
    )
    // Escapes do not hide a duplicate: "\u0061" is "a".
    rejects('{"a": 1, "\\u0061": 2}', "duplicate key 'a'")
  })

  it('keeps __proto__ and constructor as own keys without polluting prototypes', () => {
    const parsed = parseStrictJson(
      '{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 2}}}',
      'doc'
    ) as Record<string, unknown>
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.keys(parsed)).toEqual(['__proto__', 'constructor'])
    expect(Object.getOwnPropertyDescriptor(parsed, '__proto__')?.value).toEqual({ polluted: 1 })
    expect((parsed as { polluted?: unknown }).polluted).toBeUndefined()
    rejects('{"__proto__": 1, "__proto__": 2}', "duplicate key '__proto__'")
  })

  it(`allows ${MAX_DEPTH} levels of nesting and rejects deeper without overflowing the stack`, () => {
    expect(() =>
      parseStrictJson('['.repeat(MAX_DEPTH) + ']'.repeat(MAX_DEPTH), 'doc')
    ).not.toThrow()
    rejects(
      '['.repeat(MAX_DEPTH + 1) + ']'.repeat(MAX_DEPTH + 1),
      `nesting deeper than ${MAX_DEPTH}`
    )
    rejects('{"a":'.repeat(100000) + '1' + '}'.repeat(100000), `nesting deeper than ${MAX_DEPTH}`)
  })

  it('rejects invalid UTF-8 and a byte order mark', () => {
    rejects(Uint8Array.of(0x22, 0xc3, 0x28, 0x22), 'doc: not valid UTF-8')
    rejects(Uint8Array.of(0x22, 0xed, 0xa0, 0x80, 0x22), 'doc: not valid UTF-8') // CESU surrogate
    rejects(Uint8Array.of(0xef, 0xbb, 0xbf, 0x31), 'unexpected character U+FEFF')
  })

  it('rejects lone surrogate escapes and accepts paired ones', () => {
    rejects('"\\ud800"', 'lone UTF-16 surrogate')
    rejects('"\\udc00x"', 'lone UTF-16 surrogate')
    expect(parseStrictJson('"\\ud83d\\ude00"', 'doc')).toBe('😀')
  })

  it('rejects trailing data, with its position', () => {
    rejects('{} {}', 'unexpected data after the JSON value (line 1, column 4)')
    rejects('1\n2', 'unexpected data after the JSON value (line 2, column 1)')
    rejects('{"a":1}x', 'unexpected data after the JSON value')
  })

  it('rejects what RFC 8259 does not allow', () => {
    rejects('', 'unexpected end of input')
    rejects('{"a":1,}', 'expected a string key')
    rejects('[1,]', "unexpected ']'")
    rejects("{'a':1}", 'expected a string key')
    rejects('{"a" 1}', "expected ':'")
    rejects('"a\tb"', 'unescaped control character')
    rejects('"\\x41"', 'invalid escape sequence')
    rejects('"\\u12"', 'invalid \\u escape')
    rejects('"abc', 'unterminated string')
    rejects('NaN', "unexpected 'N'")
    rejects('tru', "unexpected 't'")
    rejects('[01]', "expected ']' but found '1'")
    rejects('+1', "unexpected '+'")
    rejects('1.', 'invalid number: digit expected after . (line 1, column 3)')
    rejects('1e+', 'invalid number: digit expected in exponent')
    rejects('-', 'invalid number (line 1, column 2)')
    rejects('.5', "unexpected '.'")
  })

  it('keeps numbers as numbers, rejecting overflow to Infinity', () => {
    expect(parseStrictJson('[0, -0.5, 1e3, 1E-2, 9007199254740993]', 'doc')).toEqual([
      0, -0.5, 1000, 0.01, 9007199254740992
    ])
    rejects('1e400', 'number out of range')
    rejects('-1e400', 'number out of range')
  })

  it('parses a 22 MB document within seconds', () => {
    const entry =
      '{"name": "file-name.bin", "digest": {"sha256": "' + 'a'.repeat(64) + '"}, "n": 123456}'
    const count = 200_000 // ~22 MB
    const text = `[${Array(count).fill(entry).join(',')}]`
    const started = Date.now()
    const parsed = parseStrictJson(bytes(text), 'doc') as unknown[]
    expect(parsed).toHaveLength(count)
    expect(parsed[count - 1]).toEqual(JSON.parse(entry))
    expect(Date.now() - started).toBeLessThan(20_000)
  })

  it('parses a long string and many keys quickly', () => {
    const long = 'x'.repeat(20_000_000)
    expect(parseStrictJson(`"${long}"`, 'doc')).toBe(long)
    const keys = Array.from({ length: 200_000 }, (_, i) => `"k${i}": ${i}`).join(',')
    const parsed = parseStrictJson(`{${keys}}`, 'doc') as Record<string, number>
    expect(parsed.k199999).toBe(199999)
  })
})
