import { readdir, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { treeSha256 } from '../digest/tree.js'
import type { HashProgress, TreeDigest } from '../digest/types.js'
import { download as realDownload, type DownloadFn, type DownloadProgress } from '../download.js'
import { invalid, unverifiable, VerifyError } from '../errors.js'
import type { DatasetRef } from '../protocol/ledger.js'
import { unpackArchive, type UnpackLimits } from './archive.js'

export type DatasetProgress =
  ({ phase: 'download' } & DownloadProgress) | ({ phase: 'hash' } & HashProgress)

export interface PrepareDatasetOptions {
  /** A local copy the caller gives (CLI `--dataset`, action `dataset`); else `ref.uri` is downloaded. */
  dir?: string
  /** Where the archive is downloaded and unpacked (as `dataset/`). */
  workDir: string
  download?: DownloadFn
  limits?: Partial<UnpackLimits> & { maxDownloadBytes?: number }
  onProgress?: (progress: DatasetProgress) => void
}

export interface PreparedDataset {
  dir: string
  digest: TreeDigest
}

const DEFAULT_MAX_DOWNLOAD_BYTES = 64 * 2 ** 30

/**
 * Obtains the ledger's dataset and checks its `treeSha256` (docs/protocol.md section 4: before the
 * build starts). Returns undefined when the ledger has no dataset, even if a `dir` was given:
 * the caller decides whether to warn that it is unused.
 *
 * A downloaded archive is unpacked as it is, never stripped of a top-level directory: the root
 * is over what the archive holds. `ledger init --dataset DIR` hashes DIR's contents, so a
 * published archive must hold those contents at its top level (`tar -C DIR -czf data.tar.gz .`).
 */
export async function prepareDataset(
  ref: DatasetRef | undefined,
  options: PrepareDatasetOptions
): Promise<PreparedDataset | undefined> {
  if (ref === undefined) return undefined
  const onHash = (progress: HashProgress) => options.onProgress?.({ phase: 'hash', ...progress })

  if (options.dir !== undefined) {
    const dir = path.resolve(options.dir)
    await stat(dir).catch(() => {
      throw unverifiable(
        `predicate.dataset: the dataset directory ${dir} does not exist`,
        undefined,
        { code: 'DATASET_MISSING' }
      )
    })
    const digest = await hashDataset(dir, onHash)
    if (digest.root !== ref.treeSha256) {
      throw invalid(
        `predicate.dataset.digest.treeSha256: ledger ${ref.treeSha256}, directory ${dir} ${digest.root}: ` +
          'give the directory the publisher hashed (`ledger init --dataset DIR` hashes the contents of DIR)',
        undefined,
        { code: 'DATASET_DIGEST' }
      )
    }
    return { dir, digest }
  }

  if (ref.uri === undefined) {
    throw unverifiable(
      "predicate.dataset: the ledger's dataset has no uri: pass --dataset DIR (CLI) or the dataset input (action)",
      undefined,
      { code: 'DATASET_MISSING' }
    )
  }
  const archive = path.join(options.workDir, 'dataset-archive')
  const dir = path.join(options.workDir, 'dataset')
  try {
    await (options.download ?? realDownload)(ref.uri, archive, {
      maxBytes: options.limits?.maxDownloadBytes ?? DEFAULT_MAX_DOWNLOAD_BYTES,
      onProgress: progress => options.onProgress?.({ phase: 'download', ...progress })
    }).catch((error: unknown) => {
      throw error instanceof VerifyError
        ? new VerifyError(error.verdict, `predicate.dataset.uri: ${error.message}`, error.detail, {
            code: error.code,
            cause: error
          })
        : error
    })
    await unpackArchive(archive, dir, { label: 'predicate.dataset.uri', limits: options.limits })
  } finally {
    await rm(archive, { force: true })
  }
  const digest = await hashDataset(dir, onHash)
  if (digest.root !== ref.treeSha256) {
    throw invalid(
      `predicate.dataset.digest.treeSha256: ledger ${ref.treeSha256}, archive ${ref.uri} unpacks to ${digest.root}` +
        (await layoutHint(dir)),
      undefined,
      { code: 'DATASET_DIGEST' }
    )
  }
  return { dir, digest }
}

async function hashDataset(
  dir: string,
  onProgress: (p: HashProgress) => void
): Promise<TreeDigest> {
  try {
    return await treeSha256(dir, { onProgress })
  } catch (error) {
    if (error instanceof VerifyError) throw error
    throw invalid(
      `predicate.dataset: ${dir} is not a valid tree: ${(error as Error).message}`,
      undefined,
      { code: 'TREE_INVALID' }
    )
  }
}

/** The usual cause of a differing root: the archive wraps the hashed directory in another one. */
async function layoutHint(dir: string): Promise<string> {
  const top = await readdir(dir, { withFileTypes: true })
  if (top.length === 1 && top[0].isDirectory()) {
    return (
      `: the archive holds a single top-level directory '${top[0].name}/', which is kept; ` +
      "the archive must hold the hashed directory's contents at its top level (tar -C DIR -czf data.tar.gz .)"
    )
  }
  return ": the archive must hold exactly the hashed directory's contents at its top level"
}
