// The one-call API: an SBA's bytes and the trusted keys in, a verified ledger out.
import { attestationDigest } from './capability.js'
import { parseEnvelope, verifyEnvelope } from './envelope.js'
import type { PublicKey } from './keys.js'
import { parseStatement, type Ledger } from './ledger.js'

export interface VerifiedAttestation {
  ledger: Ledger
  /** The statement's exact signed bytes (never re-encoded). */
  statement: Uint8Array
  /** hex sha256 of the PAE. */
  attestationDigest: string
  /** The distinct trusted keys whose signatures verified. */
  verifiedKeys: PublicKey[]
  keyIds: string[]
}

/**
 * Envelope form, then signatures, then ledger rules: each failure is invalid, and the first
 * failing stage names what was wrong. The ledger is only read once its bytes are authenticated.
 */
export function verifyAttestation(
  sbaBytes: Uint8Array,
  trusted: PublicKey[],
  threshold: number
): VerifiedAttestation {
  const envelope = parseEnvelope(sbaBytes)
  const verifiedKeys = verifyEnvelope(envelope, trusted, threshold)
  const ledger = parseStatement(envelope.payload)
  return {
    ledger,
    statement: envelope.payload,
    attestationDigest: attestationDigest(envelope),
    verifiedKeys,
    keyIds: verifiedKeys.map(k => k.keyId)
  }
}
