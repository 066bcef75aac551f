import { describe, expect, it } from '@jest/globals'
import {
  concatBytes,
  decodeBase64Strict,
  encodeBase64,
  fromHex,
  sha256,
  toHex,
  u64be,
  utf8
} from '../../src/protocol/encoding.js'

const text = (b: Uint8Array) => Buffer.from(b).toString('latin1')
const rejects = (s: string, why: string) =>
  expect(() => decodeBase64Strict(s, 'SBA payload')).toThrow(
    expect.objectContaining({
      verdict: 'invalid',
      message: expect.stringContaining(`SBA payload: not valid base64 (${why}`)
    })
  )

describe('hex', () => {
  it('round-trips lowercase hex of the exact length', () => {
    expect(toHex(fromHex('00ff10', 3, 'x'))).toBe('00ff10')
  })
  it('rejects uppercase, wrong length and non-hex, naming the field', () => {
    expect(() => fromHex('00FF10', 3, 'digest')).toThrow(
      "digest: expected 6 lowercase hex characters, got '00FF10'"
    )
    expect(() => fromHex('00ff', 3, 'digest')).toThrow('digest: expected 6 lowercase hex')
    expect(() => fromHex('00ffzz', 3, 'digest')).toThrow('digest: expected 6 lowercase hex')
  })
})

describe('decodeBase64Strict', () => {
  // 0xfb 0xff 0xbf spells '+/+/' in standard and '-_-_' in URL-safe base64.
  it.each([
    ['standard padded', 'aGk=', 'hi'],
    ['standard unpadded', 'aGk', 'hi'],
    ['two padding characters', 'aA==', 'h'],
    ['empty', '', ''],
    ['standard alphabet', '+/+/', '\xfb\xff\xbf'],
    ['URL-safe alphabet', '-_-_', '\xfb\xff\xbf'],
    ['URL-safe padded', '-_8=', '\xfb\xff'],
    ['URL-safe unpadded', '-_8', '\xfb\xff']
  ])('accepts %s', (_, input, expected) => {
    expect(text(decodeBase64Strict(input, 'f'))).toBe(expected)
  })

  it('rejects mixed alphabets', () => rejects('+_+_', 'mixes the standard and URL-safe'))
  it('rejects whitespace and foreign characters', () => {
    rejects('aGk= ', 'characters outside')
    rejects('aG k=', 'characters outside')
    rejects('aGk=\n', 'characters outside')
    rejects('aGk!', 'characters outside')
  })
  it('rejects bad padding', () => {
    rejects('aGk==', 'wrong padding')
    rejects('aA=', 'wrong padding')
    rejects('aA===', 'characters outside')
    rejects('a=Gk', 'characters outside')
    rejects('aGkhb', 'truncated')
    rejects('a===', 'characters outside')
  })
  it('rejects non-zero trailing bits', () => {
    rejects('aGl=', 'non-zero trailing bits')
    rejects('aB==', 'non-zero trailing bits')
    rejects('aB', 'non-zero trailing bits')
  })
  it('encodes standard padded base64', () => {
    expect(encodeBase64(Uint8Array.of(0xfb, 0xff))).toBe('+/8=')
  })
})

describe('bytes', () => {
  it('u64be writes 8 big-endian bytes', () => {
    expect(toHex(u64be(1))).toBe('0000000000000001')
    expect(toHex(u64be(0x0102030405060708n))).toBe('0102030405060708')
    expect(toHex(u64be(2n ** 64n - 1n))).toBe('ffffffffffffffff')
    expect(() => u64be(-1)).toThrow(RangeError)
    expect(() => u64be(2n ** 64n)).toThrow(RangeError)
  })
  it('concatenates, encodes UTF-8 and hashes', () => {
    expect(text(concatBytes(utf8('a'), Uint8Array.of(0), utf8('é')))).toBe('a\x00\xc3\xa9')
    expect(toHex(sha256(utf8('abc')))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    )
  })
})
