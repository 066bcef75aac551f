// Byte encodings shared by the protocol modules: hex, strict base64, u64be, UTF-8, SHA-256.
import { createHash } from 'node:crypto'
import { invalid } from '../errors.js'
import { clip } from '../text/sanitize.js'

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/** Lowercase hex of exactly `bytes` bytes; anything else is invalid, named by `field`. */
export function fromHex(s: string, bytes: number, field: string): Uint8Array {
  if (s.length !== bytes * 2 || !/^[0-9a-f]*$/.test(s)) {
    throw invalid(`${field}: expected ${bytes * 2} lowercase hex characters, got '${clip(s)}'`)
  }
  return new Uint8Array(Buffer.from(s, 'hex'))
}

const BASE64_CHARS = /^[A-Za-z0-9+/_-]*={0,2}$/

/**
 * Base64 as docs/protocol.md section 3 allows it: standard or URL-safe alphabet (never both in one
 * string), padded or not. Whitespace, misplaced or partial padding and non-zero trailing bits are
 * rejected, so every byte string has exactly one accepted spelling per alphabet and padding choice.
 */
export function decodeBase64Strict(s: string, field: string): Uint8Array {
  const fail = (why: string): never => {
    throw invalid(`${field}: not valid base64 (${why})`)
  }
  if (!BASE64_CHARS.test(s)) fail('characters outside the base64 alphabets')
  const standard = /[+/]/.test(s)
  const urlSafe = /[-_]/.test(s)
  if (standard && urlSafe) fail('mixes the standard and URL-safe alphabets')
  const body = s.replace(/=+$/, '')
  const padding = s.length - body.length
  if (body.length % 4 === 1) fail('truncated: length leaves a single dangling character')
  if (padding > 0 && s.length % 4 !== 0) fail('wrong padding')
  const decoded = Buffer.from(body, urlSafe ? 'base64url' : 'base64')
  // Node's decoder is lenient; re-encoding proves there were no stray trailing bits.
  const reencoded = decoded.toString(urlSafe ? 'base64url' : 'base64').replace(/=+$/, '')
  if (reencoded !== body) fail('non-zero trailing bits')
  return new Uint8Array(decoded)
}

/** Standard alphabet, padded: what this implementation writes. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

export function u64be(n: number | bigint): Uint8Array {
  const value = BigInt(n)
  if (value < 0n || value > 0xffffffffffffffffn) throw new RangeError(`u64 out of range: ${n}`)
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, value)
  return out
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts))
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s)
}

export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest())
}
