import { hash } from 'node:crypto'
import type { ManifestEntry } from './types.js'

const LEAF_PREFIX = 0x00
const NODE_PREFIX = 0x01

/** `u64be(len(path)) || path || u64be(size) || sha256` (PROTOCOL.md section 1, step 4). */
export function leafData(entry: ManifestEntry): Uint8Array {
  const path = Buffer.from(entry.path, 'utf8')
  const data = Buffer.allocUnsafe(8 + path.length + 8 + 32)
  data.writeBigUInt64BE(BigInt(path.length), 0)
  path.copy(data, 8)
  data.writeBigUInt64BE(BigInt(entry.size), 8 + path.length)
  data.write(entry.sha256, 16 + path.length, 32, 'hex')
  return data
}

/**
 * RFC 6962 Merkle Tree Hash with SHA-256: `MTH({d}) = SHA256(0x00 || d)`,
 * `MTH(D[0:n]) = SHA256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`, `k` the largest power of two
 * below `n`; the empty list hashes to SHA256('').
 */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  return rootOfLeafHashes(leaves.map(leafHash))
}

/** `SHA256(0x00 || leaf data)`. */
export function leafHash(data: Uint8Array): Uint8Array {
  const prefixed = Buffer.allocUnsafe(1 + data.length)
  prefixed[0] = LEAF_PREFIX
  prefixed.set(data, 1)
  return sha256(prefixed)
}

/**
 * The root over leaf hashes (already `SHA256(0x00 || d)`), built bottom-up: pairing neighbours
 * level by level and carrying an odd last node up unchanged gives exactly the recursive split.
 */
export function rootOfLeafHashes(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return sha256(new Uint8Array(0))
  const node = Buffer.allocUnsafe(65)
  node[0] = NODE_PREFIX
  let level = hashes
  while (level.length > 1) {
    const next: Uint8Array[] = []
    for (let i = 0; i + 1 < level.length; i += 2) {
      node.set(level[i], 1)
      node.set(level[i + 1], 33)
      next.push(sha256(node))
    }
    if (level.length % 2 === 1) next.push(level[level.length - 1])
    level = next
  }
  return level[0]
}

function sha256(data: Uint8Array): Uint8Array {
  return hash('sha256', data, 'buffer')
}
