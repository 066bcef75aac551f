// Where a static tiled log is read from: a directory, or a URL prefix fetched with src/download.ts.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { unverifiable, VerifyError } from '../errors.js'
import { download, type DownloadFn } from '../download.js'

/** A full entry bundle of 256 entries of at most 64 KiB each, with length prefixes. */
const MAX_FILE_BYTES = 256 * (2 + 64 * 1024)

export interface LogSource {
  /** For messages: the directory or URL. */
  location: string
  /** The bytes at a path of the log (`checkpoint`, `tile/0/000`…), undefined when absent. */
  read(file: string): Promise<Uint8Array | undefined>
  /** Removes temporary files. */
  close(): Promise<void>
}

export function directorySource(dir: string): LogSource {
  return {
    location: dir,
    read: async file => {
      try {
        return await readFile(path.join(dir, ...file.split('/')))
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
        throw unverifiable(`log ${dir}: cannot read ${file}: ${(error as Error).message}`)
      }
    },
    close: async () => {}
  }
}

/** Files under `url/`; a 404 is an absent file, any other failure is unverifiable. */
export function urlSource(url: string, fetchFile: DownloadFn = download): LogSource {
  const base = url.replace(/\/+$/, '')
  let temp: string | undefined
  return {
    location: base,
    read: async file => {
      temp ??= await mkdtemp(path.join(os.tmpdir(), 'verify-model-log-'))
      const dest = path.join(temp, file.replace(/[/.]/g, '_'))
      try {
        await fetchFile(`${base}/${file}`, dest, { maxBytes: MAX_FILE_BYTES, retries: 2 })
      } catch (error) {
        if (error instanceof VerifyError && /: HTTP 404\b/.test(error.message)) return undefined
        throw error
      }
      const bytes = await readFile(dest)
      await rm(dest, { force: true })
      return bytes
    },
    close: async () => {
      if (temp !== undefined) await rm(temp, { recursive: true, force: true })
    }
  }
}

/** `--dir DIR` or `--url URL`, exactly one. */
export function openSource(options: { dir?: string; url?: string }, fetchFile?: DownloadFn) {
  if ((options.dir === undefined) === (options.url === undefined)) {
    throw new TypeError('give exactly one of --dir DIR and --url URL')
  }
  return options.dir !== undefined
    ? directorySource(options.dir)
    : urlSource(options.url!, fetchFile)
}
