import os from 'node:os'
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import { invalid, messageOf, unverifiable, VerifyError } from '../errors.js'
import {
  createHasher,
  isHashFailure,
  type BatchReply,
  type BatchResult,
  type FileIdentity,
  type FileToHash,
  type Hasher
} from './hash-file.js'
import { defaultReadSize } from './read-size.js'
import type { HashProgress } from './types.js'
import { threadWorkers, type HashWorker, type WorkerFactory } from './workers.js'

export type { FileIdentity, FileToHash } from './hash-file.js'

/**
 * Tuning, measured on a 2-core runner (docs/performance.md): opening a small file costs about
 * as much as hashing 32 KiB; a worker takes 0.07-0.2 s to come up, so workers are started only
 * for more than ~64 MiB of work in more than one file, or for 256 files or more (listing them
 * hides the start-up).
 */
const FILE_COST = 32 << 10
const BATCH_COST = 8 << 20
export const INLINE_COST = 64 << 20
const MANY_FILES = 256
const PROGRESS_INTERVAL_MS = 250

export interface EngineOptions {
  /** Hashing threads; default `os.availableParallelism()`. */
  concurrency?: number
  /** Called every 250 ms while hashing after `finish`, and once at the end. */
  onProgress?: (progress: HashProgress) => void
  /** Below this much work (bytes, plus 32 KiB per file) no worker is started. */
  inlineCost?: number
  /** Bytes per read; default sized from the CPU's L2 cache (`defaultReadSize`). */
  readSize?: number
  /** Starts the hashing threads; default real threads running the bundled worker module. */
  workers?: WorkerFactory
}

export interface HashedFile {
  sha256: string
  size: number
  /** Hex RFC 6962 leaf hash of the file's manifest entry (PROTOCOL.md section 1, step 4). */
  leaf: string
}

/**
 * Hashes files while they are still being listed: `add` each one, then `finish`. Rejections
 * are `VerifyError`s (`invalid`) naming the file.
 */
export interface HashEngine {
  /** Queues a file (results come in the order of `add`). Throws the first hashing failure, so
   * a listing stops early. */
  add(file: FileToHash): void
  finish(): Promise<HashedFile[]>
  /** Files hashed so far by each thread: the calling one first, then each worker. */
  filesPerThread(): number[]
  /** Stops the workers (without waiting); the engine must not be used afterwards. */
  close(): void
}

/** Files hashed by one thread in one go. */
interface Batch {
  paths: string[]
  names: string[]
  /** size (-1: not known yet), mtimeMs, ino per file. */
  meta: number[]
  /** Result index of each file. */
  slots: number[]
  /** Estimated work in bytes. */
  cost: number
}

interface PoolWorker {
  worker: HashWorker
  inFlight: Batch[]
}

/** Hashes `files`; results in the same order. */
export async function hashFiles(
  files: readonly FileToHash[],
  options: EngineOptions = {}
): Promise<HashedFile[]> {
  const engine = createEngine(options)
  try {
    for (const file of files) engine.add(file)
    return await engine.finish()
  } finally {
    engine.close()
  }
}

/**
 * A pool of `concurrency` worker threads, or the calling thread alone when the work is too
 * small to be worth starting them (or `concurrency` is 1). Files are grouped into batches of
 * ~8 MiB of work; a big file is a batch of its own. A file listed without its size (listing
 * does not stat, to save a syscall per file) is sized when first opened: a small one is hashed
 * there and then, a big one comes back as a batch of its own. Whenever a thread is free it
 * takes the largest batch waiting (largest file first). Workers start once the work is worth
 * their start-up (`inlineCost`) and hash while the listing goes on; the calling thread then
 * only lists and schedules. `close` terminates the workers so the process can exit.
 */
export function createEngine(options: EngineOptions = {}): HashEngine {
  const threads = Math.max(1, options.concurrency ?? os.availableParallelism())
  const inlineCost = options.inlineCost ?? INLINE_COST
  const readSize = options.readSize ?? defaultReadSize()
  const startWorker = options.workers ?? defaultWorkers
  // Bytes and files done per hashing thread: the calling thread's pair is slot 0, then workers.
  const progress = new Float64Array(new SharedArrayBuffer(16 * (threads + 1)))
  const pool: PoolWorker[] = []
  const waiting: Batch[] = [] // ascending cost: the largest is taken from the end
  const results: HashedFile[] = []
  let filling = emptyBatch()
  let knownCost = 0
  let knownBytes = 0
  let unfinished = 0
  let failure: VerifyError | undefined
  let settle:
    { resolve: (results: HashedFile[]) => void; reject: (error: unknown) => void } | undefined
  let mainHasher: Hasher | undefined
  let finishing = false
  let mainBusy = false

  /**
   * Worth it: the work known is above `inlineCost` and not all in one file, or there are so many
   * files that the listing is long enough to hide a worker's start-up.
   */
  function startWorkersIfWorthIt(): void {
    if (threads < 2 || pool.length > 0) return
    const manyFiles = results.length >= MANY_FILES
    const parallelWork = knownCost > inlineCost && (waiting.length > 1 || filling.paths.length > 0)
    if (!manyFiles && !parallelWork) return
    const data = { readSize, progress: progress.buffer as SharedArrayBuffer }
    for (let slot = 1; slot <= threads; slot++) {
      const member: PoolWorker = { worker: undefined as unknown as HashWorker, inFlight: [] }
      const events = {
        reply: (reply: BatchReply) => {
          received(member, reply)
          feed(member)
        },
        fail
      }
      try {
        member.worker = startWorker({ ...data, slot }, events)
      } catch (error) {
        fail(error)
        throw failure
      }
      pool.push(member)
    }
    for (const member of pool) feed(member)
  }

  function received(member: PoolWorker, reply: BatchReply): void {
    if ('result' in reply) complete(member.inFlight.shift()!, reply.result)
    else fail(reply.failure)
  }

  function enqueue(batch: Batch): void {
    let at = waiting.length
    while (at > 0 && waiting[at - 1].cost > batch.cost) at--
    waiting.splice(at, 0, batch)
    unfinished++
    for (const member of pool) feed(member)
    if (finishing && !mainBusy && pool.length === 0) void hashHere()
  }

  /** A worker gets a second batch queued ahead only when it is small, so a big file never
   * waits behind another while a thread is idle. */
  function feed(member: PoolWorker): void {
    while (!failure && waiting.length > 0) {
      const busy = member.inFlight.length
      if (busy >= 2 || (busy === 1 && waiting[waiting.length - 1].cost > BATCH_COST)) return
      const batch = waiting.pop()!
      member.inFlight.push(batch)
      member.worker.send({
        paths: batch.paths,
        names: batch.names,
        meta: Float64Array.from(batch.meta)
      })
    }
  }

  function complete(batch: Batch, result: BatchResult): void {
    const { digests, sizes, leaves, deferred } = result
    batch.slots.forEach((slot, i) => {
      if (digests[i] === '') return
      results[slot] = { sha256: digests[i], size: sizes[i], leaf: leaves[i] }
      if (batch.meta[3 * i] < 0) {
        knownBytes += sizes[i]
        knownCost += sizes[i]
      }
    })
    for (let k = 0; k < deferred.length; k += 4) {
      const i = deferred[k]
      const [size, mtimeMs, ino] = deferred.slice(k + 1, k + 4)
      knownCost += size
      knownBytes += size
      const big = emptyBatch()
      addTo(big, batch.paths[i], batch.names[i], batch.slots[i], { size, mtimeMs, ino })
      enqueue(big)
    }
    startWorkersIfWorthIt()
    unfinished--
    if (unfinished === 0 && settle && !failure) settle.resolve(results)
  }

  function fail(error: unknown): void {
    if (failure) return
    failure = toVerifyError(error)
    settle?.reject(failure)
  }

  /**
   * The calling thread hashes when no worker was worth starting: a big file with overlapped
   * reads, others synchronously. Runs until nothing is waiting or workers have started;
   * `enqueue` restarts it.
   */
  async function hashHere(): Promise<void> {
    mainHasher ??= createHasher({ readSize, progress, slot: 0 })
    mainBusy = true
    while (!failure && waiting.length > 0 && pool.length === 0) {
      const batch = waiting.pop()!
      try {
        const [size, mtimeMs, ino] = batch.meta
        if (batch.paths.length === 1 && size > readSize) {
          const file = {
            path: batch.paths[0],
            name: batch.names[0],
            listed: { size, mtimeMs, ino }
          }
          const { digest, leaf } = await mainHasher.hashLarge(file, () => failure !== undefined)
          const sizes = Float64Array.of(size)
          complete(batch, { digests: [digest], sizes, leaves: [leaf], deferred: [] })
        } else {
          const { paths, names } = batch
          complete(
            batch,
            mainHasher.hashBatch({ paths, names, meta: Float64Array.from(batch.meta) })
          )
        }
      } catch (error) {
        fail(error)
        break
      }
      await yieldToEventLoop() // let progress reports in
    }
    mainBusy = false
  }

  function report(): void {
    let bytesDone = 0
    let filesDone = 0
    for (let slot = 0; slot <= threads; slot++) {
      bytesDone += progress[2 * slot]
      filesDone += progress[2 * slot + 1]
    }
    const bytesTotal = Math.max(knownBytes, bytesDone)
    options.onProgress?.({ bytesDone, bytesTotal, filesDone, filesTotal: results.length })
  }

  return {
    add(file) {
      if (failure) throw failure
      const size = file.listed?.size ?? -1
      const big = size + FILE_COST > BATCH_COST
      const batch = big ? emptyBatch() : filling
      addTo(batch, file.path, file.name, results.length, file.listed)
      results.push(undefined as unknown as HashedFile) // filled in by complete()
      knownCost += Math.max(size, 0) + FILE_COST
      if (size >= 0) knownBytes += size
      if (big) enqueue(batch)
      else if (filling.cost >= BATCH_COST) {
        enqueue(filling)
        filling = emptyBatch()
      }
      startWorkersIfWorthIt()
    },

    async finish() {
      if (filling.paths.length > 0) enqueue(filling)
      filling = emptyBatch()
      finishing = true
      const timer = options.onProgress ? setInterval(report, PROGRESS_INTERVAL_MS) : undefined
      timer?.unref()
      try {
        const done = new Promise<HashedFile[]>((resolve, reject) => {
          settle = { resolve, reject }
          if (failure) reject(failure)
          else if (unfinished === 0) resolve(results)
        })
        if (pool.length === 0) void hashHere()
        await done
      } finally {
        clearInterval(timer)
      }
      report()
      return results
    },

    filesPerThread() {
      return Array.from({ length: threads + 1 }, (_, slot) => progress[2 * slot + 1])
    },

    close() {
      for (const { worker } of pool.splice(0)) worker.close()
    }
  }
}

const defaultWorkers = threadWorkers()

function emptyBatch(): Batch {
  return { paths: [], names: [], meta: [], slots: [], cost: 0 }
}

function addTo(
  batch: Batch,
  path: string,
  name: string,
  slot: number,
  listed?: FileIdentity
): void {
  batch.paths.push(path)
  batch.names.push(name)
  batch.meta.push(listed?.size ?? -1, listed?.mtimeMs ?? 0, listed?.ino ?? 0)
  batch.slots.push(slot)
  batch.cost += (listed?.size ?? 0) + FILE_COST
}

/** A file that breaks the tree's rules is `invalid`; a thread that fails says nothing about the tree. */
function toVerifyError(error: unknown): VerifyError {
  if (error instanceof VerifyError) return error
  if (isHashFailure(error) && error.path !== '') return invalid(`${error.path}: ${error.problem}`)
  const why = isHashFailure(error) ? error.problem : messageOf(error)
  return unverifiable(`hashing failed: ${why}`)
}
