// Fetching the published states of a transcript: `stateUri` with `{i}` replaced, an https URL
// (with the download limits of src/download.ts), a file:// URL or a path.
import { lstat, mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { download as realDownload, type DownloadFn } from '../download.js'
import type { TreeDigest } from '../digest/types.js'
import { invalid, unverifiable, VerifyError } from '../errors.js'
import { clip } from '../protocol/encoding.js'
import { STATE_INDEX_PLACEHOLDER, type Transcript } from './transcript.js'
import { unpackState } from './state-archive.js'

export interface StateFetchOptions {
  /** Where the transcript came from (a URL or a file path): a relative stateUri resolves against it. */
  transcriptLocation: string
  /** Downloads and unpacked states go below this directory. */
  workDir: string
  /** A state is an /out: the cap on what a build may leave there bounds it too. */
  maxBytes: number
  download?: DownloadFn
}

export interface FetchedState {
  index: number
  dir: string
  digest: TreeDigest
  /** The URL or path it came from, for messages. */
  location: string
}

/** The URL or absolute path of state `index`: the template resolved against the transcript. */
export function stateLocation(template: string, index: number, transcriptLocation: string): string {
  const filled = template.split(STATE_INDEX_PLACEHOLDER).join(String(index))
  const base = /^[a-z][a-z0-9+.-]*:\/\//i.test(transcriptLocation)
    ? new URL(transcriptLocation)
    : pathToFileURL(path.resolve(transcriptLocation))
  const resolved = new URL(filled, base)
  // A transcript fetched from the web never makes the verifier read its own files.
  if (resolved.protocol === 'file:' && base.protocol !== 'file:')
    throw invalid(
      `transcript predicate.stateUri: '${clip(template)}' names a local file, but the transcript came from ${base.origin}: states of a downloaded transcript must be URLs`
    )
  return resolved.protocol === 'file:' ? fileURLToPath(resolved) : resolved.href
}

/**
 * Fetches state `index`, unpacks it (section 4's archive rules) and checks its root is the
 * transcript's S_index: a differing root is a mismatch, a state that cannot be had unverifiable.
 */
export async function fetchState(
  transcript: Transcript,
  index: number,
  options: StateFetchOptions
): Promise<FetchedState> {
  const location = stateLocation(transcript.stateUri, index, options.transcriptLocation)
  const label = `state ${index} (${location})`
  const dir = path.join(options.workDir, `state-${index}`)
  const archive = /^[a-z][a-z0-9+.-]*:\/\//i.test(location)
    ? path.join(options.workDir, `state-${index}.archive`)
    : location
  await mkdir(options.workDir, { recursive: true })
  try {
    if (archive !== location) {
      await (options.download ?? realDownload)(location, archive, {
        maxBytes: archiveCap(options.maxBytes)
      }).catch((error: unknown) => {
        throw error instanceof VerifyError
          ? new VerifyError('unverifiable', `${label}: cannot fetch it: ${error.message}`)
          : error
      })
    } else {
      const stats = await lstat(archive).catch(() => undefined)
      if (!stats?.isFile())
        throw unverifiable(
          `${label}: cannot fetch it: no such file: publish the state archives where stateUri says`
        )
    }
    const digest = await unpackState(archive, dir, {
      label,
      expectedRoot: transcript.states[index - 1],
      limits: { maxBytes: options.maxBytes }
    })
    return { index, dir, digest, location }
  } catch (error) {
    await rm(dir, { recursive: true, force: true })
    throw error
  } finally {
    if (archive !== location) await rm(archive, { force: true })
  }
}

/** A tar holds its files plus headers and padding: room for a generous number of entries. */
function archiveCap(maxBytes: number): number {
  return maxBytes + 2 ** 30
}
