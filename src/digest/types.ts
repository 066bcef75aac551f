/** One entry of a tree's manifest (PROTOCOL.md section 1). */
export interface ManifestEntry {
  /** `/`-separated path relative to the root, exactly the UTF-8 names on disk. */
  path: string
  size: number
  /** Lowercase hex. */
  sha256: string
}

export interface TreeDigest {
  /** 64 lowercase hex characters. */
  root: string
  /** Sorted by path bytes. */
  manifest: ManifestEntry[]
}

export interface HashProgress {
  bytesDone: number
  bytesTotal: number
  filesDone: number
  filesTotal: number
}
