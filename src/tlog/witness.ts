// A witness: cosigns the log's latest checkpoint only when it extends the last one it cosigned.
import { invalid } from '../errors.js'
import type { PrivateKey } from '../protocol/keys.js'
import { cosign } from './cosignature.js'
import { checkExtension } from './extension.js'
import { readLatest } from './log-state.js'
import { COSIGNATURE_V1, formatNote, formatVerifierKey, parseNote, verifierKey } from './note.js'
import type { LogSource } from './source.js'
import { verifyCheckpointNote } from './verify.js'

export interface Witness {
  name: string
  key: PrivateKey
}

export interface CosignResult {
  /** The served checkpoint note with this witness's cosignature added. */
  cosigned: string
  origin: string
  treeSize: number
  /** The size cosigned before (undefined: first cosignature). */
  previousSize?: number
  witnessKey: string
}

export function witnessVerifierKey(witness: Witness): string {
  return formatVerifierKey(verifierKey(witness.name, COSIGNATURE_V1, witness.key.publicKey.raw))
}

/** `previous`: the checkpoint note this witness cosigned last (its state), if any. */
export async function cosignLatest(
  source: LogSource,
  logKey: string,
  witness: Witness,
  previous: string | undefined,
  nowSeconds: number
): Promise<CosignResult> {
  const latest = await readLatest(source, logKey)
  let previousSize: number | undefined
  if (previous !== undefined) {
    const policy = { logKey, witnessKeys: [], witnessThreshold: 0 }
    const seen = verifyCheckpointNote(previous, policy, 'witness state checkpoint').checkpoint
    await checkExtension(seen, latest.checkpoint, latest.log)
    previousSize = seen.treeSize
  }
  const note = parseNote(latest.note)
  const mine = verifierKey(witness.name, COSIGNATURE_V1, witness.key.publicKey.raw)
  const signature = cosign(note.text, witness.name, witness.key.seed, mine.publicKey, nowSeconds)
  const others = note.signatures.filter(s => !(s.name === mine.name && s.keyId === mine.keyId))
  return {
    cosigned: formatNote({ text: note.text, signatures: [...others, signature] }),
    origin: latest.checkpoint.origin,
    treeSize: latest.checkpoint.treeSize,
    previousSize,
    witnessKey: formatVerifierKey(mine)
  }
}

/** Adds the cosignature lines of `cosigned` to `current` when both sign the same body. */
export function mergeCosignatures(current: string, cosigned: string): string {
  const a = parseNote(current)
  const b = parseNote(cosigned)
  if (a.text !== b.text) {
    throw invalid('the log advanced while cosigning: its checkpoint changed; run cosign again')
  }
  const seen = new Set(a.signatures.map(s => `${s.name} ${s.keyId}`))
  const added = b.signatures.filter(s => !seen.has(`${s.name} ${s.keyId}`))
  return formatNote({ text: a.text, signatures: [...a.signatures, ...added] })
}
