// C2SP tlog-proof@v1: `c2sp.org/tlog-proof@v1`, `extra <base64>`, `index <n>`, the inclusion
// proof hashes one per line, a blank line, then the checkpoint note verbatim.
import { invalid } from '../errors.js'
import { clip, encodeBase64, toHex } from '../protocol/encoding.js'
import { decodeStandardBase64, MAX_NOTE_BYTES } from './note.js'

export const PROOF_HEADER = 'c2sp.org/tlog-proof@v1'
/** A tree of 2^64 leaves needs 64 hashes. */
const MAX_PROOF_HASHES = 64

export interface TlogProof {
  /** The `extra` data: for this project, the log entry. */
  extra?: Uint8Array
  index: number
  /** Inclusion proof hashes, hex, leaf's sibling first. */
  hashes: string[]
  /** The checkpoint note as it was in the proof (signature lines included). */
  checkpoint: string
}

export function parseProof(input: string | Uint8Array): TlogProof {
  const fail = (why: string): never => {
    throw invalid(`log proof format: ${why}`)
  }
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input)
  if (bytes.length > MAX_NOTE_BYTES + 128 * 1024) fail(`${bytes.length} bytes is too large`)
  const text = bytes.toString('latin1')
  const lines = text.split('\n')
  let at = 0
  if (lines[at++] !== PROOF_HEADER) {
    fail(`the first line must be '${PROOF_HEADER}', got '${clip(lines[0])}'`)
  }
  let extra: Uint8Array | undefined
  if (lines[at]?.startsWith('extra ')) {
    extra = decodeStandardBase64(lines[at++].slice('extra '.length), 'log proof format: extra')
  }
  const index = /^index (0|[1-9][0-9]*)$/.exec(lines[at++] ?? '')
  if (index === null || !Number.isSafeInteger(Number(index[1]))) {
    return fail(`expected 'index <decimal>' on line ${at}, got '${clip(lines[at - 1] ?? '')}'`)
  }
  const hashes: string[] = []
  while (at < lines.length && lines[at] !== '') {
    const hash = decodeStandardBase64(lines[at], `log proof format: hash on line ${at + 1}`)
    if (hash.length !== 32) fail(`the hash on line ${at + 1} is ${hash.length} bytes, expected 32`)
    hashes.push(toHex(hash))
    if (hashes.length > MAX_PROOF_HASHES) fail(`more than ${MAX_PROOF_HASHES} proof hashes`)
    at++
  }
  if (at >= lines.length) fail('no blank line before the checkpoint (truncated?)')
  const rest = bytes.subarray(lines.slice(0, at + 1).join('\n').length + 1)
  if (rest.length === 0) fail('no checkpoint after the blank line (truncated?)')
  let checkpoint = ''
  try {
    checkpoint = new TextDecoder('utf-8', { fatal: true }).decode(rest)
  } catch {
    fail('the checkpoint is not valid UTF-8')
  }
  return { extra, index: Number(index[1]), hashes, checkpoint }
}

export function formatProof(proof: TlogProof): string {
  const lines = [PROOF_HEADER]
  if (proof.extra !== undefined) lines.push(`extra ${encodeBase64(proof.extra)}`)
  lines.push(`index ${proof.index}`)
  for (const hash of proof.hashes) lines.push(encodeBase64(Buffer.from(hash, 'hex')))
  return `${lines.join('\n')}\n\n${proof.checkpoint}`
}
