// The capability and the attestation digest (docs/protocol.md sections 3 and 5).
import { invalid } from '../errors.js'
import { concatBytes, fromHex, sha256, toHex, utf8 } from './encoding.js'
import { pae, type Envelope } from './envelope.js'

const CAPABILITY_DOMAIN = 'openclaw/verify-model/capability/v1'
const CAPABILITY_PREFIX = 'ocap1:'

/** hex(sha256(PAE(payloadType, payload))): what Rekor v2 logs. */
export function attestationDigest(env: Envelope): string {
  return toHex(sha256(pae(env.payloadType, env.payload)))
}

/**
 * `ocap1:` + hex sha256 over the domain, the distinct verified keys (raw 32 bytes, sorted
 * bytewise, preceded by their count as one byte), the attestation digest and the model root.
 */
export function computeCapability(
  keys: Uint8Array[],
  attestationDigest: Uint8Array | string,
  modelRoot: Uint8Array | string
): string {
  const distinct = new Map<string, Uint8Array>()
  for (const key of keys) {
    if (key.length !== 32)
      throw invalid(`capability: public key must be 32 bytes, got ${key.length}`)
    distinct.set(toHex(key), key)
  }
  if (distinct.size === 0 || distinct.size > 255) {
    throw invalid(`capability: needs 1 to 255 distinct keys, got ${distinct.size}`)
  }
  // Lowercase hex of equal length sorts like the bytes it spells.
  const sorted = [...distinct.keys()].sort().map(hex => distinct.get(hex) as Uint8Array)
  const digest = concatBytes(
    utf8(CAPABILITY_DOMAIN),
    Uint8Array.of(0, sorted.length),
    ...sorted,
    bytes32(attestationDigest, 'attestation digest'),
    bytes32(modelRoot, 'model root')
  )
  return CAPABILITY_PREFIX + toHex(sha256(digest))
}

function bytes32(value: Uint8Array | string, field: string): Uint8Array {
  if (typeof value === 'string') return fromHex(value, 32, field)
  if (value.length !== 32) throw invalid(`${field}: expected 32 bytes, got ${value.length}`)
  return value
}
