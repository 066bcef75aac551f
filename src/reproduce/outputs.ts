import { lstat, readdir } from 'node:fs/promises'
import path from 'node:path'
import { clip } from '../text/sanitize.js'
import { invalid, unverifiable } from '../errors.js'
import { manifestRoot, treeSha256 } from '../digest/tree.js'
import { sortByPathBytes } from '../digest/walk.js'
import type { HashProgress, ManifestEntry, TreeDigest } from '../digest/types.js'

export interface CollectOptions {
  onProgress?: (progress: HashProgress) => void
}

/**
 * The tree digest of what the build left in `outDir`, per `build.outputs` (docs/protocol.md
 * section 4): all of it when `outputs` is absent, else exactly the declared paths (a directory
 * means everything under it), hashed in place with their paths relative to /out. A symlink or
 * special file anywhere under /out is `invalid`, declared or not; a declared output the build
 * did not produce is a failed build (`unverifiable`).
 */
export async function collectOutputs(
  outDir: string,
  outputs: readonly string[] | undefined,
  options: CollectOptions = {}
): Promise<TreeDigest> {
  const files = await regularFilesUnder(outDir, '')
  if (outputs === undefined) {
    if (files.length === 0)
      throw unverifiable('predicate.build.outputs: the build left /out empty', undefined, {
        code: 'OUTPUT_MISSING'
      })
    return treeSha256(outDir, { onProgress: options.onProgress })
  }
  const entries = new Map<string, ManifestEntry>()
  for (const [index, declared] of outputs.entries()) {
    const field = `predicate.build.outputs[${index}]`
    const relative = path.posix.normalize(declared).replace(/\/+$/, '')
    const absolute = path.join(outDir, relative)
    const stats = await lstat(absolute).catch(() => undefined)
    if (stats === undefined)
      throw unverifiable(`${field}: the build did not produce '${clip(declared)}'`, undefined, {
        code: 'OUTPUT_MISSING'
      })
    const prefix = relative === '.' ? '' : `${relative}/`
    if (stats.isDirectory() && !files.some(file => file.startsWith(prefix)))
      throw unverifiable(
        `${field}: the build left the directory '${clip(declared)}' empty`,
        undefined,
        { code: 'OUTPUT_MISSING' }
      )
    const tree = await treeSha256(absolute, { onProgress: options.onProgress })
    for (const entry of tree.manifest) {
      const inOut = stats.isDirectory() ? prefix + entry.path : relative
      entries.set(inOut, { ...entry, path: inOut })
    }
  }
  const manifest = sortByPathBytes([...entries.values()], entry => entry.path)
  return { root: manifestRoot(manifest), manifest }
}

/**
 * The paths of the regular files under `<outDir>/<relative>`, relative to outDir; `invalid`
 * at the first symlink, FIFO, socket or device.
 */
async function regularFilesUnder(
  outDir: string,
  relative: string,
  files: string[] = []
): Promise<string[]> {
  // Appended one by one into one array: a spread of a large directory's list would overflow the stack.
  for (const dirent of await readdir(path.join(outDir, relative), { withFileTypes: true })) {
    const child = relative === '' ? dirent.name : `${relative}/${dirent.name}`
    if (dirent.isDirectory()) await regularFilesUnder(outDir, child, files)
    else if (dirent.isFile()) files.push(child)
    else
      throw invalid(
        `predicate.build.outputs: /out/${clip(child)} is a ${kindOf(dirent)}: not a valid tree (only regular files and directories may be left in /out)`,
        undefined,
        { code: 'TREE_INVALID' }
      )
  }
  return files
}

function kindOf(dirent: {
  isSymbolicLink(): boolean
  isFIFO(): boolean
  isSocket(): boolean
}): string {
  if (dirent.isSymbolicLink()) return 'symbolic link'
  if (dirent.isFIFO()) return 'FIFO'
  if (dirent.isSocket()) return 'socket'
  return 'device'
}
