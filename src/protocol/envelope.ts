// The Signed Build Attestation: a DSSE envelope (PROTOCOL.md section 3).
import { invalid } from '../errors.js'
import { sign, verifyStrict } from './ed25519.js'
import { clip, concatBytes, decodeBase64Strict, encodeBase64, utf8 } from './encoding.js'
import type { PrivateKey, PublicKey } from './keys.js'
import { isJsonObject, parseStrictJson } from './strict-json.js'

export const PAYLOAD_TYPE = 'application/vnd.in-toto+json'

/** Larger SBAs are refused before parsing. */
export const MAX_ENVELOPE_BYTES = 32 * 1024 * 1024

/**
 * More signatures are refused before any is checked: each one may cost a hash of the whole
 * payload per trusted key, so an SBA stuffed with signatures would otherwise pin the verifier
 * for hours.
 */
export const MAX_SIGNATURES = 16

export interface Signature {
  /** A hint only: which key signed. */
  keyid?: string
  sig: Uint8Array
}

export interface Envelope {
  payloadType: string
  /** The statement's exact bytes, as signed. */
  payload: Uint8Array
  signatures: Signature[]
}

/** `what` names the envelope in error messages: the SBA, or a rebuild attestation. */
export function parseEnvelope(bytes: Uint8Array, what = 'SBA'): Envelope {
  if (bytes.length > MAX_ENVELOPE_BYTES) {
    throw invalid(`${what}: ${bytes.length} bytes exceeds the ${MAX_ENVELOPE_BYTES}-byte limit`)
  }
  const doc = parseStrictJson(bytes, what)
  if (!isJsonObject(doc)) throw invalid(`${what}: expected a JSON object (a DSSE envelope)`)
  const { payloadType, payload, signatures } = doc
  if (typeof payloadType !== 'string') throw invalid(`${what} payloadType: expected a string`)
  if (payloadType !== PAYLOAD_TYPE) {
    throw invalid(`${what} payloadType: expected '${PAYLOAD_TYPE}', got '${clip(payloadType)}'`)
  }
  if (typeof payload !== 'string') throw invalid(`${what} payload: expected a base64 string`)
  if (!Array.isArray(signatures) || signatures.length === 0) {
    throw invalid(`${what} signatures: expected a non-empty array`)
  }
  if (signatures.length > MAX_SIGNATURES) {
    throw invalid(
      `${what} signatures: ${signatures.length} entries exceed the limit of ${MAX_SIGNATURES}`
    )
  }
  return {
    payloadType,
    payload: decodeBase64Strict(payload, `${what} payload`),
    signatures: signatures.map((s: unknown, i) => parseSignature(s, `${what} signatures[${i}]`))
  }
}

function parseSignature(value: unknown, field: string): Signature {
  if (!isJsonObject(value)) throw invalid(`${field}: expected an object with 'sig'`)
  const { keyid, sig } = value
  if (typeof sig !== 'string') throw invalid(`${field}.sig: expected a base64 string`)
  if (keyid !== undefined && typeof keyid !== 'string') {
    throw invalid(`${field}.keyid: expected a string`)
  }
  const decoded = decodeBase64Strict(sig, `${field}.sig`)
  return keyid === undefined ? { sig: decoded } : { keyid, sig: decoded }
}

/** DSSE pre-authentication encoding: `DSSEv1 SP len(type) SP type SP len(body) SP body`. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = utf8(payloadType)
  return concatBytes(utf8(`DSSEv1 ${type.length} `), type, utf8(` ${payload.length} `), payload)
}

/** The SBA JSON text (standard padded base64) with one signature per key. */
export function signEnvelope(statementBytes: Uint8Array, keys: PrivateKey[]): string {
  if (keys.length === 0) throw invalid('signing needs at least one private key')
  const message = pae(PAYLOAD_TYPE, statementBytes)
  const envelope = {
    payloadType: PAYLOAD_TYPE,
    payload: encodeBase64(statementBytes),
    signatures: keys.map(k => ({
      keyid: k.publicKey.keyId,
      sig: encodeBase64(sign(message, k.seed))
    }))
  }
  return `${JSON.stringify(envelope, null, 2)}\n`
}

/**
 * Tries every trusted key against every signature (a matching keyid is tried first; it is only a
 * hint) and returns the distinct trusted keys with a valid signature, in trusted order. Fewer than
 * `threshold` is invalid.
 */
export function verifyEnvelope(
  env: Envelope,
  trusted: PublicKey[],
  threshold: number
): PublicKey[] {
  const keys = distinctKeys(trusted)
  if (!Number.isInteger(threshold) || threshold < 1) {
    throw invalid(`threshold must be an integer of at least 1, got ${threshold}`)
  }
  if (threshold > keys.length) {
    throw invalid(
      `threshold ${threshold} exceeds the ${keys.length} distinct trusted public key(s); ` +
        'give more --public-key values or lower the threshold'
    )
  }
  const verified = verifiedSigners(env, keys)
  if (verified.length < threshold) {
    throw invalid(
      `SBA signatures: ${verified.length} of ${keys.length} trusted key(s) verified, ` +
        `threshold is ${threshold}; expected signatures from key id(s) ` +
        keys.map(k => k.keyId).join(', ')
    )
  }
  return verified
}

/** The distinct trusted keys with a valid signature on the envelope, in trusted order; maybe none. */
export function verifiedSigners(env: Envelope, trusted: PublicKey[]): PublicKey[] {
  const keys = distinctKeys(trusted)
  const message = pae(env.payloadType, env.payload)
  const verified = new Set<string>()
  for (const signature of env.signatures) {
    const hinted = keys.filter(k => k.keyId === signature.keyid)
    const candidates = [...hinted, ...keys.filter(k => k.keyId !== signature.keyid)]
    const signer = candidates.find(
      k => !verified.has(k.keyId) && verifyStrict(signature.sig, message, k.raw)
    )
    if (signer !== undefined) verified.add(signer.keyId)
  }
  return keys.filter(k => verified.has(k.keyId))
}

function distinctKeys(keys: PublicKey[]): PublicKey[] {
  const byId = new Map<string, PublicKey>()
  for (const key of keys) if (!byId.has(key.keyId)) byId.set(key.keyId, key)
  return [...byId.values()]
}
