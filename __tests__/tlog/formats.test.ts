import { describe, expect, it } from '@jest/globals'
import { createHash } from 'node:crypto'
import { rootOfLeafHashes } from '../../src/digest/merkle.js'
import { parseCheckpoint } from '../../src/tlog/checkpoint.js'
import { parseEntry } from '../../src/tlog/entry.js'
import { parseNote } from '../../src/tlog/note.js'
import {
  consistencyProof,
  inclusionProof,
  leafNodeReader,
  rootFromInclusionProof,
  verifyConsistency
} from '../../src/tlog/rfc6962.js'
import {
  decodeEntryBundle,
  encodeEntryBundle,
  entryBundlePath,
  hashTilePath,
  tileIndexPath,
  tileWidth
} from '../../src/tlog/tiles.js'

const leaves = Array.from({ length: 70 }, (_, i) =>
  createHash('sha256').update(`leaf ${i}`).digest('hex')
)

describe('tlog-tiles paths and bundles', () => {
  it('writes tile indexes in x001/x234/067 form, partial tiles as .p/W', () => {
    expect(tileIndexPath(0)).toBe('000')
    expect(tileIndexPath(67)).toBe('067')
    expect(tileIndexPath(1000)).toBe('x001/000')
    expect(tileIndexPath(1234067)).toBe('x001/x234/067')
    expect(hashTilePath(0, 1234067, 256)).toBe('tile/0/x001/x234/067')
    expect(hashTilePath(1, 0, 1)).toBe('tile/1/000.p/1')
    expect(entryBundlePath(1, 44)).toBe('tile/entries/001.p/44')
    expect(() => hashTilePath(0, 0, 0)).toThrow(RangeError)
    expect(() => hashTilePath(0, 0, 257)).toThrow(RangeError)
  })

  it('knows each tile width for a tree size', () => {
    expect(tileWidth(0, 0, 300)).toBe(256)
    expect(tileWidth(0, 1, 300)).toBe(44)
    expect(tileWidth(0, 2, 300)).toBe(0)
    expect(tileWidth(1, 0, 300)).toBe(1)
    expect(tileWidth(1, 0, 65536)).toBe(256)
    expect(tileWidth(2, 0, 65536)).toBe(1)
  })

  it('encodes entry bundles as u16 length + bytes and refuses truncation', () => {
    const entries = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(300, 1)]
    const bundle = encodeEntryBundle(entries)
    expect(bundle.subarray(0, 3)).toEqual(Uint8Array.of(0, 1, 0x61))
    expect(decodeEntryBundle(bundle, 'b').map(e => Buffer.from(e))).toEqual(entries)
    expect(() => decodeEntryBundle(bundle.subarray(0, bundle.length - 1), 'b')).toThrow(
      /b: entry at byte 5 is truncated/
    )
    expect(() => decodeEntryBundle(Uint8Array.of(0), 'b')).toThrow(/b: truncated length at byte 0/)
    expect(() => encodeEntryBundle([Buffer.alloc(65536)])).toThrow(/exceeds 65535/)
  })
})

describe('RFC 6962 / 9162 proofs', () => {
  it('every inclusion proof of every leaf of trees up to 70 gives the root', async () => {
    for (let size = 1; size <= leaves.length; size++) {
      const node = leafNodeReader(leaves.slice(0, size))
      const root = rootOfLeafHashes(leaves.slice(0, size))
      for (let index = 0; index < size; index++) {
        const proof = await inclusionProof(index, size, node)
        expect(rootFromInclusionProof(index, size, leaves[index], proof)).toBe(root)
        if (size > 1) {
          expect(rootFromInclusionProof(index, size, leaves[(index + 1) % size], proof)).not.toBe(
            root
          )
        }
      }
    }
  })

  it('every consistency proof between trees up to 70 verifies; a changed one does not', async () => {
    const node = leafNodeReader(leaves)
    const roots = [
      rootOfLeafHashes([]),
      ...leaves.map((_, i) => rootOfLeafHashes(leaves.slice(0, i + 1)))
    ]
    for (let second = 1; second <= leaves.length; second++) {
      for (let first = 1; first <= second; first++) {
        const proof = await consistencyProof(first, second, node)
        verifyConsistency(first, second, roots[first], roots[second], proof)
        if (first < second) {
          expect(() =>
            verifyConsistency(first, second, roots[first - 1], roots[second], proof)
          ).toThrow(/consistency proof from size/)
          expect(() =>
            verifyConsistency(first, second, roots[first], roots[second], [...proof, leaves[0]])
          ).toThrow(/too many hashes|gives the/)
        }
      }
    }
    expect(() => verifyConsistency(5, 4, roots[5], roots[4], [])).toThrow(/the tree shrank/)
  })
})

describe('strict parsing', () => {
  const note = (text: string) => () => parseNote(text)
  it('refuses malformed notes, checkpoints and entries, naming what is wrong', () => {
    expect(note('a\n')).toThrow(/no blank line between the text and the signatures/)
    expect(note('a\n\n')).toThrow(/does not end|no signature lines/)
    expect(note('a\n\n— k AAAAAA==\n')).toThrow(/4 bytes is too short/)
    expect(note('a\n\n- k AAAAAAAA\n')).toThrow(/expected '— <key name> <base64>'/)
    expect(note('a\tb\n\n— k AAAAAAAA\n')).toThrow(/contains a control character/)
    expect(() => parseNote(Uint8Array.of(0xff, 0x0a, 0x0a))).toThrow(/not valid UTF-8/)
    expect(() => parseCheckpoint('o\n01\nAAAA\n')).toThrow(/tree size '01' is not a decimal/)
    expect(() => parseCheckpoint('o\n1\nAAAA\n')).toThrow(/the root is 3 bytes, expected 32/)
    expect(() => parseCheckpoint('o\n1\n')).toThrow(/expected origin, size and root lines/)
    const entry = (text: string) => () => parseEntry(Buffer.from(text))
    const digest = 'a'.repeat(64)
    expect(
      entry(
        `openclaw.dev/verify-model/log-entry/v2\nattestation ${digest}\nkey ${'b'.repeat(64)}\n`
      )
    ).toThrow(/the first line is/)
    expect(entry(`openclaw.dev/verify-model/log-entry/v1\nattestation ${digest}\n`)).toThrow(
      /no key line/
    )
    expect(
      entry(
        `openclaw.dev/verify-model/log-entry/v1\nattestation ${digest}\nkey ${'c'.repeat(64)}\nkey ${'b'.repeat(64)}\n`
      )
    ).toThrow(/not distinct and sorted/)
    expect(
      entry(
        `openclaw.dev/verify-model/log-entry/v1\nattestation ${digest.toUpperCase()}\nkey ${'b'.repeat(64)}\n`
      )
    ).toThrow(/expected 'attestation <64 lowercase hex>'/)
  })
})
