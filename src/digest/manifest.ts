import { writeFile } from 'node:fs/promises'
import type { TreeDigest } from './types.js'

/**
 * A tree digest as JSON with one manifest entry per line, so two manifests compare with
 * `diff`: `{"root": …, "manifest": [{"path": …, "size": …, "sha256": …}, …]}`.
 */
export function formatManifest(digest: TreeDigest): string {
  const entries = digest.manifest.map(entry =>
    JSON.stringify({ path: entry.path, size: entry.size, sha256: entry.sha256 })
  )
  const list = entries.length === 0 ? '[]' : `[\n    ${entries.join(',\n    ')}\n  ]`
  return `{\n  "root": ${JSON.stringify(digest.root)},\n  "manifest": ${list}\n}\n`
}

export async function writeManifest(file: string, digest: TreeDigest): Promise<void> {
  await writeFile(file, formatManifest(digest))
}
