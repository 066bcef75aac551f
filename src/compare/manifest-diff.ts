import type { ManifestEntry } from '../digest/types.js'
import { sortByPathBytes } from '../digest/walk.js'

export interface ChangedEntry {
  path: string
  expected: ManifestEntry
  actual: ManifestEntry
}

/** How two manifests differ; every list is sorted by path bytes. */
export interface ManifestDiff {
  /** In the actual (downloaded) tree only. */
  added: ManifestEntry[]
  /** In the expected (reproduced) tree only. */
  removed: ManifestEntry[]
  /** In both, with a different size or sha256. */
  changed: ChangedEntry[]
  /** How many paths are in both with the same size and sha256. */
  same: number
}

/** Unsigned bytewise order of the UTF-8 paths (docs/protocol.md section 1), never locale order. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

export function diffManifests(expected: ManifestEntry[], actual: ManifestEntry[]): ManifestDiff {
  const actualByPath = new Map(actual.map(entry => [entry.path, entry]))
  const expectedPaths = new Set(expected.map(entry => entry.path))
  const removed: ManifestEntry[] = []
  const changed: ChangedEntry[] = []
  let same = 0
  for (const entry of expected) {
    const other = actualByPath.get(entry.path)
    if (other === undefined) removed.push(entry)
    else if (other.size === entry.size && other.sha256 === entry.sha256) same++
    else changed.push({ path: entry.path, expected: entry, actual: other })
  }
  const added = actual.filter(entry => !expectedPaths.has(entry.path))
  const byPath = (entry: { path: string }): string => entry.path
  return {
    added: sortByPathBytes(added, byPath),
    removed: sortByPathBytes(removed, byPath),
    changed: sortByPathBytes(changed, byPath),
    same
  }
}
