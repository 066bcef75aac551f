import { createEngine } from './engine.js'
import { leafData, merkleRoot } from './merkle.js'
import type { HashProgress, ManifestEntry, TreeDigest } from './types.js'
import { listTree } from './walk.js'

export interface TreeOptions {
  /** Entry name when `target` is a single regular file (default: its base name). */
  singleName?: string
  /** Bytes and files done / total, throttled (at most every 250 ms, plus start and end). */
  onProgress?: (progress: HashProgress) => void
  /** Hashing threads; default `os.availableParallelism()`. */
  concurrency?: number
}

/**
 * The tree digest of a directory, or of a single regular file as a tree of one entry
 * (PROTOCOL.md section 1). Rejects with a `VerifyError` (`invalid`) naming the path and the rule
 * for a symbolic link, special file, non-UTF-8 name, unreadable file, empty tree, or a file that
 * changes while it is hashed.
 */
export async function treeSha256(target: string, options: TreeOptions = {}): Promise<TreeDigest> {
  const engine = createEngine({ concurrency: options.concurrency, onProgress: options.onProgress })
  try {
    const files = listTree(target, {
      singleName: options.singleName,
      onFile: file => engine.anticipate(file.size)
    })
    const digests = Buffer.from((await engine.hash(files)).buffer)
    const manifest = files.map((file, i): ManifestEntry => ({
      path: file.relativePath,
      size: file.size,
      sha256: digests.toString('hex', 32 * i, 32 * i + 32)
    }))
    return { root: manifestRoot(manifest), manifest }
  } finally {
    engine.close()
  }
}

/** The root (hex) of a manifest already sorted by path bytes. */
export function manifestRoot(manifest: readonly ManifestEntry[]): string {
  return Buffer.from(merkleRoot(manifest.map(leafData))).toString('hex')
}
