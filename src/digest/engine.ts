import os from 'node:os'
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'
import { invalid, VerifyError } from '../errors.js'
import {
  HASHER_SOURCE,
  isHashFailure,
  loadBatchHasher,
  makeBatches,
  type Batch,
  type FileToHash,
  type HashBatch
} from './hash-file.js'
import type { HashProgress } from './types.js'

export type { FileToHash } from './hash-file.js'

/**
 * Tuning, measured on a 2-core runner (docs/performance.md): 1 MiB reads are ~5 % faster than
 * 128 KiB and no slower than 4 MiB; opening a file costs about as much as hashing 32 KiB;
 * a worker takes 50-150 ms to start, so work below ~64 MiB is done on the calling thread.
 */
export const BUFFER_SIZE = 1 << 20
const FILE_COST = 32 << 10
const BATCH_COST = 8 << 20
export const INLINE_COST = 64 << 20
const PROGRESS_INTERVAL_MS = 250

export function costOf(size: number): number {
  return size + FILE_COST
}

export interface EngineOptions {
  /** Worker threads; default `os.availableParallelism()`. */
  concurrency?: number
  /** Called at most every 250 ms while hashing, and once at the start and at the end. */
  onProgress?: (progress: HashProgress) => void
  /** Work estimated below this (bytes, see `costOf`) is hashed on the calling thread. */
  inlineCost?: number
}

export interface HashEngine {
  /** Accounts a file about to be hashed; starts the pool early once the work is worth it. */
  anticipate(size: number): void
  /** SHA-256 of every file, `32 * i` for `files[i]`. Rejects with a `VerifyError` (`invalid`). */
  hash(files: readonly FileToHash[]): Promise<Uint8Array>
  /** Stops the workers; the engine must not be used afterwards. */
  close(): void
}

const WORKER_SOURCE = `'use strict'
const { parentPort, workerData } = require('node:worker_threads')
const hashBatch = (${HASHER_SOURCE})(require('node:fs'), require('node:crypto'), workerData.bufferSize, workerData.counters, workerData.slot)
parentPort.on('message', batch => {
  try {
    hashBatch(batch.paths, batch.meta, batch.slots, new Uint8Array(batch.digests))
    parentPort.postMessage({ done: true })
  } catch (error) {
    const failure = error && typeof error.problem === 'string' ? error : { path: '', problem: String(error && error.stack || error) }
    parentPort.postMessage({ failure: failure })
  }
})
parentPort.postMessage({ ready: true })`

interface PoolWorker {
  worker: Worker
  ready: boolean
  inFlight: Batch[]
}

/**
 * A fixed pool of worker threads hashing batches of files, largest first. Nothing starts
 * until the first `anticipate` past the inline threshold or `hash`; `close` terminates the
 * threads so the process can exit.
 */
export function createEngine(options: EngineOptions = {}): HashEngine {
  const threads = Math.max(1, options.concurrency ?? os.availableParallelism())
  const inlineCost = options.inlineCost ?? INLINE_COST
  // One bytes/files pair per worker, and one for the calling thread (the last slot).
  const counters = new BigInt64Array(new SharedArrayBuffer(16 * (threads + 1)))
  const pool: PoolWorker[] = []
  let anticipated = 0
  let mainHasher: HashBatch | undefined

  function startPool(size: number): void {
    while (pool.length < size) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { bufferSize: BUFFER_SIZE, counters, slot: pool.length },
        stdout: false
      })
      pool.push({ worker, ready: false, inFlight: [] })
    }
  }

  function hashOnMainThread(batch: Batch, digests: Uint8Array): void {
    mainHasher ??= loadBatchHasher(BUFFER_SIZE, counters, threads)
    try {
      mainHasher(batch.paths, batch.meta, batch.slots, digests)
    } catch (error) {
      throw toVerifyError(error)
    }
  }

  function progressOf(bytesTotal: number, filesTotal: number): HashProgress {
    let bytesDone = 0
    let filesDone = 0
    for (let slot = 0; slot <= threads; slot++) {
      bytesDone += Number(Atomics.load(counters, 2 * slot))
      filesDone += Number(Atomics.load(counters, 2 * slot + 1))
    }
    return { bytesDone, bytesTotal, filesDone, filesTotal }
  }

  return {
    anticipate(size) {
      anticipated += costOf(size)
      if (anticipated > inlineCost) startPool(threads)
    },

    async hash(files) {
      const digests = new Uint8Array(new SharedArrayBuffer(32 * files.length))
      const order = files.map((_, index) => index).sort((a, b) => files[b].size - files[a].size)
      const batches = makeBatches(files, order, costOf, BATCH_COST)
      const bytesTotal = files.reduce((sum, file) => sum + file.size, 0)
      const totalCost = batches.reduce((sum, batch) => sum + batch.cost, 0)
      const report = () => options.onProgress?.(progressOf(bytesTotal, files.length))
      counters.fill(0n)
      report()
      if (pool.length === 0 && totalCost <= inlineCost) {
        for (const batch of batches) hashOnMainThread(batch, digests)
      } else {
        const timer = options.onProgress ? setInterval(report, PROGRESS_INTERVAL_MS) : undefined
        timer?.unref()
        try {
          await runPool(batches, digests)
        } finally {
          clearInterval(timer)
        }
      }
      report()
      return digests
    },

    close() {
      for (const { worker } of pool.splice(0)) {
        worker.unref()
        void worker.terminate()
      }
    }
  }

  /**
   * Largest batches go first to idle workers; a worker gets a second batch queued only when
   * it is small, so a big file is never stuck behind another. Until a worker is up, the
   * calling thread hashes small batches from the other end of the queue.
   */
  function runPool(batches: Batch[], digests: Uint8Array): Promise<void> {
    startPool(Math.min(threads, batches.length))
    let head = 0
    let tail = batches.length - 1
    let remaining = batches.length
    let settled = false
    return new Promise<void>((resolve, reject) => {
      const fail = (error: unknown) => {
        if (settled) return
        settled = true
        reject(toVerifyError(error))
      }
      const finishOne = () => {
        remaining--
        if (remaining === 0 && !settled) {
          settled = true
          resolve()
        }
      }
      const feed = (member: PoolWorker) => {
        while (head <= tail) {
          const next = batches[head]
          const busy = member.inFlight.length
          if (busy >= 2 || (busy === 1 && next.cost > BATCH_COST)) return
          head++
          member.inFlight.push(next)
          member.worker.postMessage({ ...next, digests: digests.buffer })
        }
      }
      for (const member of pool) {
        member.worker.removeAllListeners()
        member.worker.on('message', (message: WorkerMessage) => {
          if (message.ready) member.ready = true
          else if (message.failure) fail(message.failure)
          else {
            member.inFlight.shift()
            finishOne()
          }
          if (!settled) feed(member)
        })
        member.worker.on('error', fail)
        member.worker.on('exit', code => fail(new Error(`a hashing thread exited (${code})`)))
        feed(member)
      }
      void (async () => {
        while (!settled && head <= tail && !pool.some(member => member.ready)) {
          if (batches[tail].cost > BATCH_COST) return
          const batch = batches[tail--]
          try {
            hashOnMainThread(batch, digests)
          } catch (error) {
            return fail(error)
          }
          finishOne()
          await yieldToEventLoop()
        }
      })()
    })
  }
}

interface WorkerMessage {
  ready?: true
  done?: true
  failure?: unknown
}

function toVerifyError(error: unknown): VerifyError {
  if (error instanceof VerifyError) return error
  if (isHashFailure(error)) return invalid(`${error.path}: ${error.problem}`)
  return invalid(`hashing failed: ${error instanceof Error ? error.message : String(error)}`)
}
