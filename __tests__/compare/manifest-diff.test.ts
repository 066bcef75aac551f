import { describe, expect, it } from '@jest/globals'
import { comparePaths, diffManifests } from '../../src/compare/manifest-diff.js'
import type { ManifestEntry } from '../../src/digest/types.js'

const entry = (path: string, size: number, hexDigit: string): ManifestEntry => ({
  path,
  size,
  sha256: hexDigit.repeat(64)
})

describe('diffManifests', () => {
  it('sorts each file into added, removed, changed or same', () => {
    const expected = [
      entry('config.json', 10, 'a'),
      entry('model/W1.npy', 100, 'b'),
      entry('model/W2.npy', 100, 'c'),
      entry('old.txt', 3, 'd')
    ]
    const actual = [
      entry('config.json', 10, 'a'),
      entry('model/W1.npy', 100, 'e'),
      entry('model/W2.npy', 101, 'c'),
      entry('new.txt', 4, 'f')
    ]
    const diff = diffManifests(expected, actual)
    expect(diff.same).toBe(1)
    expect(diff.added).toEqual([entry('new.txt', 4, 'f')])
    expect(diff.removed).toEqual([entry('old.txt', 3, 'd')])
    expect(diff.changed).toEqual([
      { path: 'model/W1.npy', expected: expected[1], actual: actual[1] },
      { path: 'model/W2.npy', expected: expected[2], actual: actual[2] }
    ])
  })

  it('reports nothing for equal manifests and does not modify its inputs', () => {
    const manifest = [entry('a', 1, '1'), entry('b', 2, '2')]
    const copy = structuredClone(manifest)
    expect(diffManifests(manifest, copy)).toEqual({ added: [], removed: [], changed: [], same: 2 })
    expect(manifest).toEqual(copy)
  })

  it('orders by UTF-8 bytes, not by UTF-16 code units or locale', () => {
    // In UTF-16 the emoji's surrogate 0xD83D sorts before U+FF5E; in UTF-8 (F0 > EF) after it.
    const emoji = '\u{1F600}.bin'
    const fullwidth = '\uFF5E.bin'
    const diff = diffManifests(
      [],
      [entry(emoji, 1, 'a'), entry(fullwidth, 1, 'b'), entry('Z', 1, 'c')]
    )
    expect(diff.added.map(e => e.path)).toEqual(['Z', fullwidth, emoji])
    expect(comparePaths('a', 'B')).toBeGreaterThan(0)
  })
})
