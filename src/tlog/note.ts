// C2SP signed-note: text, a blank line, then `— <key name> base64(key id || signature)` lines;
// and the verifier keys `<name>+<hex key id>+<base64(type || public key)>` that name who signs.
import { invalid } from '../errors.js'
import { sign, verifyStrict } from '../protocol/ed25519.js'
import {
  clip,
  concatBytes,
  decodeBase64Strict,
  encodeBase64,
  sha256,
  utf8
} from '../protocol/encoding.js'

/** Signature types of C2SP signed-note this project uses. */
export const ED25519 = 0x01
export const COSIGNATURE_V1 = 0x04

/** Far above the 16 signatures C2SP requires a verifier to accept; bounds the work per note. */
export const MAX_NOTE_SIGNATURES = 64
export const MAX_NOTE_BYTES = 1024 * 1024

const EM_DASH = '\u2014'

export interface VerifierKey {
  name: string
  /** uint32 key id, as the first four signature bytes carry it. */
  keyId: number
  type: number
  /** The 32-byte Ed25519 public key. */
  publicKey: Uint8Array
}

export interface NoteSignature {
  name: string
  keyId: number
  /** The signature bytes after the 4-byte key id. */
  signature: Uint8Array
}

export interface Note {
  /** The signed text, including its final newline. */
  text: string
  signatures: NoteSignature[]
}

/** `SHA256(name || 0x0A || type || public key)[:4]`, big-endian. */
export function noteKeyId(name: string, type: number, publicKey: Uint8Array): number {
  const digest = sha256(concatBytes(utf8(`${name}\n`), Uint8Array.of(type), publicKey))
  return new DataView(digest.buffer, digest.byteOffset, 4).getUint32(0)
}

export function formatKeyId(keyId: number): string {
  return keyId.toString(16).padStart(8, '0')
}

/** Names are non-empty, without Unicode spaces or '+', and (our rule) printable. */
export function checkKeyName(name: string, field: string): string {
  // eslint-disable-next-line no-control-regex
  if (name === '' || /[\s+\u0000-\u001f\u007f\u0085\u00a0]/u.test(name)) {
    throw invalid(`${field}: key name '${clip(name)}' must be non-empty, without spaces or '+'`)
  }
  return name
}

export function verifierKey(name: string, type: number, publicKey: Uint8Array): VerifierKey {
  checkKeyName(name, 'key name')
  return { name, type, publicKey, keyId: noteKeyId(name, type, publicKey) }
}

export function formatVerifierKey(key: VerifierKey): string {
  const encoded = encodeBase64(concatBytes(Uint8Array.of(key.type), key.publicKey))
  return `${key.name}+${formatKeyId(key.keyId)}+${encoded}`
}

/** A verifier key string of the given signature type, its key id checked against its key. */
export function parseVerifierKey(text: string, type: number, field: string): VerifierKey {
  const fail = (why: string): never => {
    throw invalid(
      `${field}: ${why}; expected <name>+<8 hex key id>+<base64 of 0x${type.toString(16).padStart(2, '0')} || 32-byte Ed25519 key>, got '${clip(text)}'`
    )
  }
  const match = /^([^+]+)\+([^+]*)\+(.*)$/s.exec(text.trim())
  if (match === null) return fail('not a C2SP verifier key')
  const [, name, id, key] = match
  checkKeyName(name, field)
  if (!/^[0-9a-f]{8}$/.test(id)) fail('the key id is not 8 lowercase hex characters')
  let bytes: Uint8Array = new Uint8Array()
  try {
    bytes = decodeStandardBase64(key, field)
  } catch {
    fail('the key is not standard base64')
  }
  if (bytes.length !== 33) fail(`the key is ${bytes.length} bytes, expected 33`)
  if (bytes[0] !== type) {
    fail(`signature type 0x${bytes[0].toString(16).padStart(2, '0')} is not the one expected`)
  }
  const parsed = verifierKey(name, type, bytes.subarray(1))
  if (formatKeyId(parsed.keyId) !== id) {
    fail(`key id ${id} does not match the key (its id is ${formatKeyId(parsed.keyId)})`)
  }
  return parsed
}

/** C2SP base64: the standard alphabet, padded; nothing else. */
export function decodeStandardBase64(s: string, field: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) {
    throw invalid(`${field}: not valid base64 (standard alphabet, padded, expected)`)
  }
  return decodeBase64Strict(s, field)
}

/**
 * A signed note, strictly: valid UTF-8 without control characters other than newline, text
 * ending in a newline, then the last blank line, then 1 to MAX_NOTE_SIGNATURES signature lines.
 */
export function parseNote(input: string | Uint8Array, field = 'note'): Note {
  const fail = (why: string): never => {
    throw invalid(`${field}: ${why}`)
  }
  const bytes = typeof input === 'string' ? utf8(input) : input
  if (bytes.length > MAX_NOTE_BYTES) fail(`${bytes.length} bytes exceeds ${MAX_NOTE_BYTES}`)
  let text = ''
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    fail('not valid UTF-8')
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0009\u000b-\u001f]/.test(text)) fail('contains a control character')
  if (!text.endsWith('\n')) fail('does not end in a newline (truncated?)')
  const split = text.lastIndexOf('\n\n')
  if (split === -1) fail('no blank line between the text and the signatures')
  const body = text.slice(0, split + 1)
  const lines = text.slice(split + 2, -1).split('\n')
  if (lines.length === 1 && lines[0] === '') fail('no signature lines')
  if (lines.length > MAX_NOTE_SIGNATURES) {
    fail(`${lines.length} signature lines exceed the limit of ${MAX_NOTE_SIGNATURES}`)
  }
  const signatures = lines.map((line, i) => parseSignatureLine(line, `${field} signature ${i + 1}`))
  return { text: body, signatures }
}

function parseSignatureLine(line: string, field: string): NoteSignature {
  const match = new RegExp(`^${EM_DASH} (\\S+) (\\S+)$`, 'u').exec(line)
  if (match === null) {
    throw invalid(`${field}: expected '${EM_DASH} <key name> <base64>', got '${clip(line)}'`)
  }
  const name = checkKeyName(match[1], field)
  const bytes = decodeStandardBase64(match[2], field)
  if (bytes.length < 5) throw invalid(`${field}: ${bytes.length} bytes is too short`)
  const keyId = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0)
  return { name, keyId, signature: bytes.subarray(4) }
}

export function formatSignatureLine(signature: NoteSignature): string {
  const id = new Uint8Array(4)
  new DataView(id.buffer).setUint32(0, signature.keyId)
  return `${EM_DASH} ${signature.name} ${encodeBase64(concatBytes(id, signature.signature))}\n`
}

export function formatNote(note: Note): string {
  if (note.signatures.length === 0) throw invalid('a signed note needs at least one signature')
  return `${note.text}\n${note.signatures.map(formatSignatureLine).join('')}`
}

/** The signatures whose name and key id are the key's (C2SP: others are ignored). */
export function signaturesBy(note: Note, key: VerifierKey): NoteSignature[] {
  return note.signatures.filter(s => s.name === key.name && s.keyId === key.keyId)
}

/** An Ed25519 (type 0x01) signature of the note text. */
export function signEd25519(text: string, name: string, seed: Uint8Array, publicKey: Uint8Array) {
  const key = verifierKey(name, ED25519, publicKey)
  return { name, keyId: key.keyId, signature: sign(utf8(text), seed) }
}

/**
 * True when the key signed the note's text (type 0x01). A known key with a signature that does
 * not verify makes the whole note invalid, as C2SP advises: it is never a mere "not signed".
 */
export function verifyEd25519(note: Note, key: VerifierKey, field: string): boolean {
  if (key.type !== ED25519) throw invalid(`${field}: key ${key.name} is not an Ed25519 note key`)
  const candidates = signaturesBy(note, key)
  for (const candidate of candidates) {
    if (!verifyStrict(candidate.signature, utf8(note.text), key.publicKey)) {
      throw invalid(
        `${field}: the signature by ${key.name}+${formatKeyId(key.keyId)} does not verify`
      )
    }
  }
  return candidates.length > 0
}
