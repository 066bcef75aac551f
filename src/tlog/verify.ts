// Offline verification of a .tlog-proof against a log policy (PROTOCOL.md section 7).
import { invalid, VerifyError } from '../errors.js'
import { leafHash } from '../digest/merkle.js'
import { toHex } from '../protocol/encoding.js'
import { parseCheckpoint, type Checkpoint } from './checkpoint.js'
import { verifyCosignature } from './cosignature.js'
import { parseEntry } from './entry.js'
import {
  COSIGNATURE_V1,
  ED25519,
  formatKeyId,
  parseNote,
  parseVerifierKey,
  verifyEd25519,
  type Note,
  type VerifierKey
} from './note.js'
import { parseProof } from './proof.js'
import { rootFromInclusionProof } from './rfc6962.js'

export interface LogPolicy {
  logKey: string
  witnessKeys: string[]
  witnessThreshold: number
}

export interface LogProofResult {
  index: number
  origin: string
  treeSize: number
  root: string
  witnesses: string[]
}

/** The policy's keys, parsed and checked: a policy that can never pass is refused up front. */
export function parseLogPolicy(policy: LogPolicy): {
  log: VerifierKey
  witnesses: VerifierKey[]
  threshold: number
} {
  const log = parseVerifierKey(policy.logKey, ED25519, 'log key')
  const byKey = new Map<string, VerifierKey>()
  policy.witnessKeys.forEach((text, i) => {
    const key = parseVerifierKey(text, COSIGNATURE_V1, `witness key ${i + 1}`)
    byKey.set(`${key.name}+${formatKeyId(key.keyId)}+${toHex(key.publicKey)}`, key)
  })
  const witnesses = [...byKey.values()]
  const threshold = policy.witnessThreshold
  if (!Number.isSafeInteger(threshold) || threshold < 0) {
    throw invalid(`witness threshold must be a whole number ≥ 0, got ${threshold}`)
  }
  if (threshold > witnesses.length) {
    throw invalid(
      `witness threshold ${threshold} exceeds the ${witnesses.length} distinct witness key(s) given`
    )
  }
  return { log, witnesses, threshold }
}

/** A checkpoint note signed by the log key, with at least `threshold` configured witnesses. */
export function verifyCheckpointNote(
  text: string | Uint8Array,
  policy: LogPolicy,
  field = 'checkpoint'
): { checkpoint: Checkpoint; note: Note; witnesses: string[] } {
  const { log, witnesses, threshold } = parseLogPolicy(policy)
  const note = parseNote(text, field)
  if (!verifyEd25519(note, log, `${field}: log signature`)) {
    throw invalid(
      `${field}: log signature: none by the log key ${log.name}+${formatKeyId(log.keyId)}`
    )
  }
  const checkpoint = parseCheckpoint(note.text, field)
  if (checkpoint.origin !== log.name) {
    throw invalid(`${field}: origin '${checkpoint.origin}' is not the log key's name '${log.name}'`)
  }
  const cosigned = witnesses
    .filter(witness => verifyCosignature(note, witness, `${field}: witness`) !== undefined)
    .map(witness => witness.name)
  if (cosigned.length < threshold) {
    throw invalid(
      `${field}: witness threshold: ${cosigned.length} of ${witnesses.length} configured witness(es) cosigned, ${threshold} required`
    )
  }
  return { checkpoint, note, witnesses: cosigned }
}

/**
 * Checks, in order: the proof's form, the checkpoint's log signature and origin, the witness
 * threshold, that the entry names this attestation and every key that verified it, and that
 * the entry is included at `index` under the checkpoint's root. Every failure is invalid.
 */
export function verifyLogProof(
  proof: string | Uint8Array,
  policy: LogPolicy,
  subject: { attestationDigest: string; verifiedKeys: Uint8Array[] }
): LogProofResult {
  try {
    const parsed = parseProof(proof)
    const { checkpoint, witnesses } = verifyCheckpointNote(
      parsed.checkpoint,
      policy,
      'log proof checkpoint'
    )
    if (parsed.extra === undefined) {
      throw invalid("log proof entry: no 'extra' line carrying the log entry")
    }
    const entry = parseEntry(parsed.extra, 'log proof entry')
    if (entry.attestationDigest !== subject.attestationDigest) {
      throw invalid(
        `log proof entry: it logs attestation ${entry.attestationDigest}, not this SBA's ${subject.attestationDigest}`
      )
    }
    for (const key of subject.verifiedKeys) {
      if (!entry.keys.includes(toHex(key))) {
        throw invalid(`log proof entry: the verified key ${toHex(key)} is not listed`)
      }
    }
    if (parsed.index >= checkpoint.treeSize) {
      throw invalid(
        `log proof inclusion: index ${parsed.index} is not below the tree size ${checkpoint.treeSize}`
      )
    }
    const root = inclusionRoot(parsed.index, checkpoint.treeSize, parsed.extra, parsed.hashes)
    if (root !== checkpoint.root) {
      throw invalid(
        `log proof inclusion: the entry at index ${parsed.index} gives root ${root}, the checkpoint says ${checkpoint.root}`
      )
    }
    return {
      index: parsed.index,
      origin: checkpoint.origin,
      treeSize: checkpoint.treeSize,
      root: checkpoint.root,
      witnesses
    }
  } catch (error) {
    if (error instanceof VerifyError && error.verdict === 'invalid') throw error
    throw invalid(`log proof: ${error instanceof Error ? error.message : String(error)}`)
  }
}

function inclusionRoot(index: number, size: number, entry: Uint8Array, hashes: string[]): string {
  try {
    return rootFromInclusionProof(index, size, leafHash(entry), hashes)
  } catch (error) {
    throw invalid(`log proof inclusion: ${(error as Error).message}`)
  }
}
