// The one place @noble/ed25519 is configured: v3 needs its SHA-512 supplied.
import * as ed from '@noble/ed25519'
import { sha512 } from '@noble/hashes/sha2.js'

ed.hashes.sha512 = sha512

export function getPublicKey(seed: Uint8Array): Uint8Array {
  return ed.getPublicKey(seed)
}

export function sign(message: Uint8Array, seed: Uint8Array): Uint8Array {
  return ed.sign(message, seed)
}

/**
 * Strict RFC 8032 verification (`zip215: false`: non-canonical S and small-order keys fail).
 * noble throws on malformed lengths or points; that is a failed verification, not an error.
 */
export function verifyStrict(sig: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    return ed.verify(sig, message, publicKey, { zip215: false })
  } catch {
    return false
  }
}
