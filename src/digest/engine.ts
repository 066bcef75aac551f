import os from 'node:os'
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'
import { invalid, VerifyError } from '../errors.js'
import {
  HASHER_SOURCE,
  isHashFailure,
  loadHasher,
  type FileToHash,
  type Hasher
} from './hash-file.js'
import type { HashProgress } from './types.js'

export type { FileToHash } from './hash-file.js'

/**
 * Tuning, measured on a 2-core runner (docs/performance.md): 1 MiB reads beat 128 KiB by ~8 %
 * and 4 MiB by nothing; opening a small file costs about as much as hashing 32 KiB; a worker
 * takes 40-150 ms of CPU to start, so trees below ~64 MiB are hashed on the calling thread.
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
  /** Hashing threads, the calling one included; default `os.availableParallelism()`. */
  concurrency?: number
  /** Called when all files are added, at most every 250 ms while hashing, and at the end. */
  onProgress?: (progress: HashProgress) => void
  /** Below this much work (bytes, see `costOf`) no worker is started. */
  inlineCost?: number
}

/**
 * Hashes files while they are still being listed: `add` each one, then `finish`. Rejections
 * are `VerifyError`s (`invalid`) naming the file.
 */
export interface HashEngine {
  /** Queues a file (its result index is the number of files added before it). Throws the
   * first hashing failure, so a listing stops early. */
  add(file: FileToHash): void
  /** Hex SHA-256 of every added file, in the order they were added. */
  finish(): Promise<string[]>
  /** Stops the workers (without waiting); the engine must not be used afterwards. */
  close(): void
}

/** A group of files hashed by one thread in one go. */
interface Batch {
  paths: string[]
  meta: number[]
  /** Result index of each file. */
  slots: number[]
  /** Estimated work in bytes (see `costOf`). */
  cost: number
}

const WORKER_SOURCE = `'use strict'
const { parentPort, workerData } = require('node:worker_threads')
const { hashBatch } = (${HASHER_SOURCE})(require('node:fs'), require('node:crypto'), workerData.bufferSize, new Float64Array(workerData.progress), workerData.slot)
parentPort.on('message', batch => {
  try {
    parentPort.postMessage({ digests: hashBatch(batch.paths, batch.meta) })
  } catch (error) {
    const failure = error && typeof error.problem === 'string' ? error : { path: '', problem: String(error && error.stack || error) }
    parentPort.postMessage({ failure: failure })
  }
})`

interface PoolWorker {
  worker: Worker
  inFlight: Batch[]
}

/** Hashes `files` and returns their hex SHA-256 in the same order. */
export async function hashFiles(
  files: readonly FileToHash[],
  options: EngineOptions = {}
): Promise<string[]> {
  const engine = createEngine(options)
  try {
    for (const file of files) engine.add(file)
    return await engine.finish()
  } finally {
    engine.close()
  }
}

/**
 * The calling thread plus `concurrency - 1` worker threads. Small files are grouped into
 * batches of ~8 MiB of work, a big file is a batch of its own; whenever a thread is free it
 * takes the largest batch waiting (largest file first). Workers start once the files added
 * are worth their start-up (`inlineCost`) and hash while the listing goes on; the calling
 * thread joins in at `finish`. `close` terminates the workers so the process can exit.
 */
export function createEngine(options: EngineOptions = {}): HashEngine {
  const threads = Math.max(1, options.concurrency ?? os.availableParallelism())
  const inlineCost = options.inlineCost ?? INLINE_COST
  // Bytes and files done per hashing thread; the calling thread's pair is slot 0.
  const progress = new Float64Array(new SharedArrayBuffer(16 * threads))
  const pool: PoolWorker[] = []
  const waiting: Batch[] = [] // ascending cost: the largest is taken from the end
  const digests: string[] = []
  let filling = emptyBatch()
  let addedCost = 0
  let addedBytes = 0
  let unfinished = 0
  let failure: VerifyError | undefined
  let settle: { resolve: (digests: string[]) => void; reject: (error: unknown) => void } | undefined
  let mainHasher: Hasher | undefined

  function startWorkers(): void {
    while (pool.length < threads - 1) {
      const member: PoolWorker = {
        worker: new Worker(WORKER_SOURCE, {
          eval: true,
          workerData: { bufferSize: BUFFER_SIZE, progress: progress.buffer, slot: pool.length + 1 },
          stdout: false
        }),
        inFlight: []
      }
      member.worker.on('message', (message: { digests?: string[]; failure?: unknown }) => {
        if (message.digests) complete(member.inFlight.shift()!, message.digests)
        else fail(message.failure)
        feed(member)
      })
      member.worker.on('error', fail)
      member.worker.on('exit', code => fail(new Error(`a hashing thread exited (${code})`)))
      pool.push(member)
    }
  }

  function enqueue(batch: Batch): void {
    let at = waiting.length
    while (at > 0 && waiting[at - 1].cost > batch.cost) at--
    waiting.splice(at, 0, batch)
    unfinished++
    for (const member of pool) feed(member)
  }

  /** A worker gets a second batch queued ahead only when it is small, so a big file never
   * waits behind another while a thread is idle. */
  function feed(member: PoolWorker): void {
    while (!failure && waiting.length > 0) {
      const busy = member.inFlight.length
      if (busy >= 2 || (busy === 1 && waiting[waiting.length - 1].cost > BATCH_COST)) return
      const batch = waiting.pop()!
      member.inFlight.push(batch)
      member.worker.postMessage({ paths: batch.paths, meta: Float64Array.from(batch.meta) })
    }
  }

  function complete(batch: Batch, hexes: readonly string[]): void {
    batch.slots.forEach((slot, i) => (digests[slot] = hexes[i]))
    unfinished--
    if (unfinished === 0 && settle && !failure) settle.resolve(digests)
  }

  function fail(error: unknown): void {
    if (failure) return
    failure = toVerifyError(error)
    settle?.reject(failure)
  }

  /** The calling thread's share: a big file with overlapped reads, small ones synchronously. */
  async function hashHere(): Promise<void> {
    mainHasher ??= loadHasher(BUFFER_SIZE, progress, 0)
    while (!failure && waiting.length > 0) {
      const batch = waiting.pop()!
      try {
        if (batch.paths.length === 1 && batch.meta[0] > BUFFER_SIZE) {
          const [size, mtimeMs, ino] = batch.meta
          complete(batch, [await mainHasher.hashLarge(batch.paths[0], size, mtimeMs, ino)])
        } else complete(batch, mainHasher.hashBatch(batch.paths, Float64Array.from(batch.meta)))
      } catch (error) {
        return fail(error)
      }
      if (pool.length > 0) await yieldToEventLoop() // let worker messages in
    }
  }

  function report(): void {
    let bytesDone = 0
    let filesDone = 0
    for (let slot = 0; slot < threads; slot++) {
      bytesDone += progress[2 * slot]
      filesDone += progress[2 * slot + 1]
    }
    options.onProgress?.({
      bytesDone,
      bytesTotal: addedBytes,
      filesDone,
      filesTotal: digests.length
    })
  }

  return {
    add(file) {
      if (failure) throw failure
      const cost = costOf(file.size)
      const batch = cost > BATCH_COST ? emptyBatch() : filling
      batch.paths.push(file.path)
      batch.meta.push(file.size, file.mtimeMs, file.ino)
      batch.slots.push(digests.length)
      batch.cost += cost
      digests.push('')
      addedCost += cost
      addedBytes += file.size
      if (digests.length > 1 && addedCost > inlineCost) startWorkers()
      if (batch !== filling) enqueue(batch)
      else if (filling.cost >= BATCH_COST) {
        enqueue(filling)
        filling = emptyBatch()
      }
    },

    async finish() {
      if (filling.paths.length > 0) enqueue(filling)
      filling = emptyBatch()
      report()
      const timer = options.onProgress ? setInterval(report, PROGRESS_INTERVAL_MS) : undefined
      timer?.unref()
      try {
        const done = new Promise<string[]>((resolve, reject) => {
          settle = { resolve, reject }
          if (failure) reject(failure)
          else if (unfinished === 0) resolve(digests)
        })
        void hashHere()
        await done
      } finally {
        clearInterval(timer)
      }
      report()
      return digests
    },

    close() {
      for (const { worker } of pool.splice(0)) {
        worker.removeAllListeners()
        worker.on('error', () => undefined)
        worker.unref()
        void worker.terminate()
      }
    }
  }
}

function emptyBatch(): Batch {
  return { paths: [], meta: [], slots: [], cost: 0 }
}

function toVerifyError(error: unknown): VerifyError {
  if (error instanceof VerifyError) return error
  if (isHashFailure(error)) return invalid(`${error.path}: ${error.problem}`)
  return invalid(`hashing failed: ${error instanceof Error ? error.message : String(error)}`)
}
