import { createEngine } from './engine.js'
import { entryLeafHash, rootOfLeafHashes } from './merkle.js'
import type { HashProgress, ManifestEntry, TreeDigest } from './types.js'
import { listTree, sortByPathBytes } from './walk.js'
import type { WorkerFactory } from './workers.js'

export interface TreeOptions {
  /** Entry name when `target` is a single regular file (default: its base name). */
  singleName?: string
  /** Bytes and files done / total: every 250 ms while hashing, and once at the end. */
  onProgress?: (progress: HashProgress) => void
  /** Hashing threads; default `os.availableParallelism()`. */
  concurrency?: number
  /** Starts the hashing threads (default: real threads running the bundled worker). */
  workers?: WorkerFactory
}

/**
 * The tree digest of a directory, or of a single regular file as a tree of one entry
 * (PROTOCOL.md section 1). Rejects with a `VerifyError` (`invalid`) naming the path and the rule
 * for a symbolic link, special file, non-UTF-8 name, unreadable file, empty tree, or a file that
 * changes while it is hashed. Files are hashed while the tree is still being listed.
 */
export async function treeSha256(target: string, options: TreeOptions = {}): Promise<TreeDigest> {
  const engine = createEngine({
    concurrency: options.concurrency,
    onProgress: options.onProgress,
    workers: options.workers
  })
  try {
    const files = await listTree(target, {
      singleName: options.singleName,
      onFile: file => engine.add(file)
    })
    const hashed = await engine.finish()
    const sorted = sortByPathBytes(
      files.map((file, i) => ({ name: file.name, ...hashed[i] })),
      file => file.name
    )
    return {
      root: rootOfLeafHashes(sorted.map(file => file.leaf)),
      manifest: sorted.map(({ name, size, sha256 }) => ({ path: name, size, sha256 }))
    }
  } finally {
    engine.close()
  }
}

/**
 * The tree digest of files hashed elsewhere (a download, hashed while it streamed): sorted and
 * rooted exactly as `treeSha256` does for the same files.
 */
export function treeOfEntries(entries: readonly ManifestEntry[]): TreeDigest {
  const manifest = sortByPathBytes(
    entries.map(({ path, size, sha256 }) => ({ path, size, sha256 })),
    entry => entry.path
  )
  return { root: manifestRoot(manifest), manifest }
}

/** The root (hex) of a manifest already sorted by path bytes. */
export function manifestRoot(manifest: readonly ManifestEntry[]): string {
  return rootOfLeafHashes(
    manifest.map(entry => entryLeafHash(entry.path, entry.size, entry.sha256))
  )
}
