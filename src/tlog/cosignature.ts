// C2SP tlog-cosignature/v1 (signature type 0x04): a witness's timestamped Ed25519 signature of
// `cosignature/v1\ntime <t>\n` followed by the checkpoint body; line bytes id(4) || u64be(t) || sig.
import { invalid } from '../errors.js'
import { sign, verifyStrict } from '../protocol/ed25519.js'
import { concatBytes, u64be, utf8 } from '../protocol/encoding.js'
import {
  COSIGNATURE_V1,
  formatKeyId,
  signaturesBy,
  verifierKey,
  type Note,
  type NoteSignature,
  type VerifierKey
} from './note.js'

export interface Cosignature {
  witness: VerifierKey
  /** Seconds since the Unix epoch. */
  timestamp: number
}

function signedMessage(checkpointText: string, timestamp: number): Uint8Array {
  return utf8(`cosignature/v1\ntime ${timestamp}\n${checkpointText}`)
}

export function cosign(
  checkpointText: string,
  name: string,
  seed: Uint8Array,
  publicKey: Uint8Array,
  timestamp: number
): NoteSignature {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw invalid(`cosignature timestamp ${timestamp} is not a whole number of seconds`)
  }
  const key = verifierKey(name, COSIGNATURE_V1, publicKey)
  const sig = sign(signedMessage(checkpointText, timestamp), seed)
  return { name, keyId: key.keyId, signature: concatBytes(u64be(timestamp), sig) }
}

/**
 * The witness's verified cosignature on the note, or undefined when it has none. One that is
 * present and fails is invalid: a configured witness never signs wrongly by accident.
 */
export function verifyCosignature(
  note: Note,
  witness: VerifierKey,
  field: string
): Cosignature | undefined {
  if (witness.type !== COSIGNATURE_V1) {
    throw invalid(`${field}: ${witness.name} is not a cosignature/v1 (type 0x04) key`)
  }
  let found: Cosignature | undefined
  for (const candidate of signaturesBy(note, witness)) {
    const bytes = candidate.signature
    const who = `${witness.name}+${formatKeyId(witness.keyId)}`
    if (bytes.length !== 72) {
      throw invalid(`${field}: the cosignature by ${who} is ${bytes.length + 4} bytes, expected 76`)
    }
    const time = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0)
    if (time > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw invalid(`${field}: the cosignature by ${who} has an impossible timestamp ${time}`)
    }
    const timestamp = Number(time)
    if (!verifyStrict(bytes.subarray(8), signedMessage(note.text, timestamp), witness.publicKey)) {
      throw invalid(`${field}: the cosignature by ${who} does not verify`)
    }
    found = { witness, timestamp }
  }
  return found
}
