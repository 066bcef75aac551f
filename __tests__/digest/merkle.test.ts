import { describe, expect, it } from '@jest/globals'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { entryLeafHash, leafData, merkleRoot } from '../../src/digest/merkle.js'
import { vectorsDir } from '../helpers/paths.js'

const rfc6962 = JSON.parse(readFileSync(path.join(vectorsDir, 'rfc6962.json'), 'utf8')) as {
  leaves: string[]
  roots: Record<string, string>
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex')
const sha256 = (...parts: Uint8Array[]) => {
  const hash = createHash('sha256')
  for (const part of parts) hash.update(part)
  return hash.digest()
}

/** RFC 6962 section 2.1, written recursively as the RFC states it. */
function recursiveMth(leaves: Uint8Array[]): Buffer {
  if (leaves.length === 0) return sha256()
  if (leaves.length === 1) return sha256(Buffer.of(0), leaves[0])
  let k = 1
  while (k * 2 < leaves.length) k *= 2
  return sha256(Buffer.of(1), recursiveMth(leaves.slice(0, k)), recursiveMth(leaves.slice(k)))
}

describe('merkleRoot', () => {
  const leaves = rfc6962.leaves.map(leaf => Buffer.from(leaf, 'hex'))

  it.each(Object.entries(rfc6962.roots))(
    'matches rfc6962.json over the first %s leaves',
    (n, root) => {
      expect(hex(merkleRoot(leaves.slice(0, Number(n))))).toBe(root)
    }
  )

  it('equals the recursive definition for every size up to 70', () => {
    const many = Array.from({ length: 70 }, (_, i) => Buffer.from(`leaf ${i}`))
    for (let n = 0; n <= many.length; n++)
      expect(hex(merkleRoot(many.slice(0, n)))).toBe(hex(recursiveMth(many.slice(0, n))))
  })
})

describe('leafData', () => {
  it('is u64be(len(path)) || path || u64be(size) || sha256', () => {
    const sha = 'ab'.repeat(32)
    const data = Buffer.from(leafData({ path: 'dir/é', size: 258, sha256: sha }))
    const path = Buffer.from('dir/é', 'utf8')
    expect(data.toString('hex')).toBe(
      '000000000000000' + path.length.toString(16) + path.toString('hex') + '0000000000000102' + sha
    )
    expect(data.length).toBe(8 + path.length + 8 + 32)
  })

  it('encodes sizes above 2^32', () => {
    const data = Buffer.from(leafData({ path: 'x', size: 2 ** 33 + 5, sha256: '00'.repeat(32) }))
    expect(data.readBigUInt64BE(9)).toBe(2n ** 33n + 5n)
  })

  it('hashed, is the RFC 6962 leaf hash the hashing threads compute (one encoding)', () => {
    const entries = [
      { path: 'dir/é', size: 258, sha256: 'ab'.repeat(32) },
      { path: 'x'.repeat(5000), size: 2 ** 40, sha256: '01'.repeat(32) },
      { path: 'short', size: 0, sha256: 'ff'.repeat(32) }
    ]
    for (const entry of entries)
      expect(entryLeafHash(entry.path, entry.size, entry.sha256)).toBe(
        hex(sha256(Buffer.of(0), leafData(entry)))
      )
  })

  it('refuses a digest that is not 64 lowercase hex', () => {
    expect(() => entryLeafHash('f', 1, 'AB'.repeat(32))).toThrow(
      'leaf of f: sha256 is not 64 lowercase hex'
    )
  })
})
