/** One entry of a tree's manifest (docs/protocol.md section 1). */
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
  /**
   * Bytes of the files whose size is known so far: trees are listed without a stat per file,
   * and a file's size is learnt when it is first opened (big files first, within milliseconds).
   */
  bytesTotal: number
  filesDone: number
  /** Exact: every file is listed before the first report. */
  filesTotal: number
}
