// The log entry of PROTOCOL.md section 7: which attestation, signed by which Ed25519 keys.
import { invalid } from '../errors.js'
import { clip, toHex, utf8 } from '../protocol/encoding.js'

export const ENTRY_HEADER = 'openclaw.dev/verify-model/log-entry/v1'
export const MAX_ENTRY_BYTES = 64 * 1024

export interface LogEntry {
  /** hex sha256 of the SBA's PAE. */
  attestationDigest: string
  /** hex raw 32-byte Ed25519 keys, distinct, sorted bytewise. */
  keys: string[]
}

/** The entry bytes for an attestation and the keys whose signatures verified (any order). */
export function formatEntry(attestationDigest: string, keys: readonly Uint8Array[]): Uint8Array {
  const hexKeys = [...new Set(keys.map(key => toHex(key)))].sort()
  if (hexKeys.length === 0) throw invalid('log entry: at least one verified key is needed')
  const text = [`${ENTRY_HEADER}\n`, `attestation ${attestationDigest}\n`]
  for (const key of hexKeys) text.push(`key ${key}\n`)
  const entry = utf8(text.join(''))
  parseEntry(entry)
  return entry
}

/** Strict: the exact header, lowercase hex, keys distinct and sorted, every line ending in \n. */
export function parseEntry(bytes: Uint8Array, field = 'log entry'): LogEntry {
  const fail = (why: string): never => {
    throw invalid(`${field}: ${why}`)
  }
  if (bytes.length > MAX_ENTRY_BYTES) fail(`${bytes.length} bytes exceeds ${MAX_ENTRY_BYTES}`)
  const text = Buffer.from(bytes).toString('latin1')
  if (!text.endsWith('\n')) fail('does not end in a newline')
  const [header, attestation, ...keyLines] = text.slice(0, -1).split('\n')
  if (header !== ENTRY_HEADER) fail(`the first line is '${clip(header)}', expected ${ENTRY_HEADER}`)
  const digest = /^attestation ([0-9a-f]{64})$/.exec(attestation ?? '')
  if (digest === null)
    return fail(`expected 'attestation <64 lowercase hex>', got '${clip(attestation ?? '')}'`)
  if (keyLines.length === 0) return fail('no key line')
  const keys = keyLines.map(line => {
    const key = /^key ([0-9a-f]{64})$/.exec(line)
    return key === null ? fail(`expected 'key <64 lowercase hex>', got '${clip(line)}'`) : key[1]
  })
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1] >= keys[i]) fail('key lines are not distinct and sorted')
  }
  return { attestationDigest: digest[1], keys }
}
