// A segment's state as published (PROTOCOL.md section 9): a tar of run i's whole /out. Written
// the same way every time (entries in path-byte order, fixed owner, mode and mtime), so equal
// states give equal archives; read with the dataset's unpacking rules (section 4).
import { createReadStream, createWriteStream } from 'node:fs'
import { lstat } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import tar from 'tar-stream'
import { treeSha256 } from '../digest/tree.js'
import type { TreeDigest } from '../digest/types.js'
import { mismatch } from '../errors.js'
import { unpackArchive, type UnpackLimits } from '../reproduce/archive.js'

/** Writes `dir` (a valid tree: regular files only) as a tar to `file`; returns the tree digest. */
export async function writeStateArchive(dir: string, file: string): Promise<TreeDigest> {
  const digest = await treeSha256(dir)
  const pack = tar.pack()
  // streamx streams work in node's pipeline; only their typings differ.
  const written = pipeline(
    pack as unknown as NodeJS.ReadableStream,
    createWriteStream(file, { flags: 'wx' })
  )
  written.catch(() => {})
  try {
    for (const entry of digest.manifest) {
      const source = path.join(dir, ...entry.path.split('/'))
      const stats = await lstat(source)
      if (!stats.isFile() || stats.size !== entry.size)
        throw new Error(`${source} changed while the state archive was written`)
      const sink = pack.entry({
        name: entry.path,
        size: entry.size,
        mode: stats.mode & 0o111 ? 0o755 : 0o644,
        mtime: new Date(0),
        uid: 0,
        gid: 0,
        uname: '',
        gname: '',
        type: 'file'
      })
      await pipeline(createReadStream(source), sink as unknown as NodeJS.WritableStream)
    }
    pack.finalize()
  } catch (error) {
    pack.destroy(error as Error)
    throw error
  }
  await written
  return digest
}

export interface UnpackStateOptions {
  /** Names the state in messages, e.g. `state 3 (https://…/state-3.tar)`. */
  label: string
  /** The root the transcript commits to; a differing one is a mismatch. */
  expectedRoot?: string
  limits?: Partial<UnpackLimits>
}

/** Unpacks a state archive into `dir` and returns its tree digest, checked against the transcript. */
export async function unpackState(
  file: string,
  dir: string,
  options: UnpackStateOptions
): Promise<TreeDigest> {
  await unpackArchive(file, dir, { label: options.label, limits: options.limits })
  const digest = await treeSha256(dir)
  if (options.expectedRoot !== undefined && digest.root !== options.expectedRoot)
    throw mismatch(
      `${options.label} unpacks to root ${digest.root}, but the transcript commits to ${options.expectedRoot}: the published state is not the one signed`
    )
  return digest
}
