import { mkdir, rename, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { treeSha256 } from '../digest/tree.js'
import { messageOf } from '../errors.js'
import type { Ledger } from '../protocol/ledger.js'
import { prepareDataset } from '../reproduce/dataset.js'

/** The part of @actions/cache used here, injectable for tests. */
export interface CacheApi {
  isFeatureAvailable(): boolean
  restoreCache(paths: string[], key: string): Promise<string | undefined>
  saveCache(paths: string[], key: string): Promise<number>
}

export interface DatasetCacheOptions {
  cache: CacheApi
  workDir: string
  warn: (message: string) => void
  info: (message: string) => void
  /** Bound on each cache call: a hanging cache service costs at most this. */
  timeoutMs?: number
  /** Where the fixed restore paths live (default: the OS temporary directory). */
  cacheRoot?: string
  /** Told of the restore path this run holds: the caller removes it when the run ends. */
  hold: (dir: string) => void
}

const cacheKey = (root: string): string => `verify-model-dataset-${root}`

/**
 * Restores the ledger's downloadable dataset from the Actions cache (re-verifying its root, since
 * a cache is not trusted) or downloads it and saves it. Returns the directory to build with, or
 * undefined when the ledger has no downloadable dataset. Cache trouble is only ever a warning.
 */
export async function resolveCachedDataset(
  ledger: Ledger,
  options: DatasetCacheOptions
): Promise<string | undefined> {
  const dataset = ledger.dataset
  if (!dataset?.uri) return undefined
  if (!options.cache.isFeatureAvailable()) {
    options.info('dataset cache: the Actions cache service is not available here; downloading')
    return undefined
  }
  const key = cacheKey(dataset.treeSha256)
  // A fixed path: @actions/cache versions an entry by its paths, so a per-run path never hits.
  const cachedDir = path.join(
    options.cacheRoot ?? os.tmpdir(),
    'verify-model-dataset-cache',
    dataset.treeSha256
  )
  if (!(await claim(cachedDir))) {
    options.info(
      `dataset cache: ${cachedDir} is in use by another run on this machine; downloading`
    )
    return undefined
  }
  options.hold(cachedDir)
  const restore = await bounded(options, 'restore', () =>
    options.cache.restoreCache([cachedDir], key)
  )
  if (restore.settled && restore.value) {
    const restored = await treeSha256(cachedDir).catch(() => undefined)
    if (restored?.root === dataset.treeSha256) {
      options.info(`dataset cache: restored and re-verified ${dataset.treeSha256}`)
      return cachedDir
    }
    options.warn(
      `dataset cache: the restored dataset's root ${restored?.root ?? '(not a valid tree)'} is not ${dataset.treeSha256}; discarding it and downloading`
    )
    await rm(cachedDir, { recursive: true, force: true })
  }
  const prepared = await prepareDataset(dataset, {
    workDir: path.join(options.workDir, 'dataset-download')
  })
  if (!prepared) return undefined
  // A restore that did not settle may still be writing into cachedDir: never build from it.
  if (!restore.settled) return prepared.dir
  // Saved under the same path it is restored to: the cache's version hashes the paths.
  await rm(cachedDir, { recursive: true, force: true })
  await rename(prepared.dir, cachedDir)
  await bounded(options, 'save', () => options.cache.saveCache([cachedDir], key))
  return cachedDir
}

/** Creates `dir` (not its parents) as this run's: false when it exists already. */
async function claim(dir: string): Promise<boolean> {
  await mkdir(path.dirname(dir), { recursive: true })
  try {
    await mkdir(dir)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw error
  }
}

/** `settled: false` when the call failed or was abandoned at its time limit. */
type Bounded<T> = { settled: true; value: T } | { settled: false }

async function bounded<T>(
  options: DatasetCacheOptions,
  what: string,
  call: () => Promise<T>
): Promise<Bounded<T>> {
  const timeoutMs = options.timeoutMs ?? 120_000
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<Bounded<T>>(resolve => {
    timer = setTimeout(() => {
      options.warn(
        `dataset cache: ${what} did not finish within ${timeoutMs / 1000} s; going on without the cache`
      )
      resolve({ settled: false })
    }, timeoutMs)
    timer.unref()
  })
  try {
    return await Promise.race([call().then(value => ({ settled: true as const, value })), timeout])
  } catch (error) {
    options.warn(`dataset cache: ${what} failed (${messageOf(error)}); going on without the cache`)
    return { settled: false }
  } finally {
    clearTimeout(timer)
  }
}
