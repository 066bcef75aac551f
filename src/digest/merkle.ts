import { hash } from 'node:crypto'
import type { ManifestEntry } from './types.js'

const LEAF_PREFIX = 0x00
const NODE_PREFIX = 0x01
/** Reused for every interior node: one allocation, not one per hash. */
const node = Buffer.alloc(65, NODE_PREFIX)

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
  return Buffer.from(rootOfLeafHashes(leaves.map(leafHash)), 'hex')
}

/** `SHA256(0x00 || leaf data)`, hex. */
export function leafHash(data: Uint8Array): string {
  const prefixed = Buffer.allocUnsafe(1 + data.length)
  prefixed[0] = LEAF_PREFIX
  prefixed.set(data, 1)
  return hash('sha256', prefixed, 'hex')
}

/**
 * The root (hex) over hex leaf hashes, built bottom-up: pairing neighbours level by level and
 * carrying an odd last node up unchanged gives exactly the recursive split. Hex strings, not
 * Buffers: for 20,000 leaves they halve the time (no Buffer per node for the GC to track).
 */
export function rootOfLeafHashes(hashes: readonly string[]): string {
  if (hashes.length === 0) return hash('sha256', '', 'hex')
  let level = hashes
  while (level.length > 1) {
    const next: string[] = []
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i], level[i + 1]))
    if (level.length % 2 === 1) next.push(level[level.length - 1])
    level = next
  }
  return level[0]
}

/** RFC 6962 interior node `SHA256(0x01 || left || right)`, over and to hex hashes. */
export function nodeHash(left: string, right: string): string {
  node.write(left, 1, 'hex')
  node.write(right, 33, 'hex')
  return hash('sha256', node, 'hex')
}
