import crypto from 'node:crypto'
import fs from 'node:fs'

/**
 * The file-hashing loop, as JavaScript source. It is source text rather than a TypeScript
 * function because it must also run in worker threads: the code is bundled by ncc into one
 * file, so a worker cannot load a separate script, and a stringified function would carry
 * coverage instrumentation under jest. The main thread compiles the same text (`loadBatchHasher`),
 * so both paths run one implementation. Node built-ins only.
 *
 * `createBatchHasher(fs, crypto, bufferSize, counters, slot, afterChunk?)` returns
 * `hashBatch(paths, meta, slots, digests)`: for each file `i`, `meta[3i..3i+2]` is the size,
 * mtimeMs and inode seen when the tree was listed; the SHA-256 goes to
 * `digests[32 * slots[i]]`. Progress is added to `counters[2 * slot]` (bytes) and
 * `counters[2 * slot + 1]` (files) with Atomics, so another thread may read it at any time.
 * `afterChunk(path, bytesSoFar)`, if given, runs after every read (tests change files there).
 *
 * Per file: open without following links (O_NOFOLLOW) and without blocking on a FIFO swapped in
 * (O_NONBLOCK); read into one reused buffer until a short read at or past the listed size;
 * fstat the open descriptor. The file is rejected unless it is still a regular file with the
 * listed size, mtime and inode and exactly `size` bytes were read: this catches a file that
 * grows, shrinks, is rewritten or replaced anywhere between the listing and the end of hashing.
 * A file that fits the buffer takes one read and a one-shot hash.
 * Failures are thrown as plain `{ path, problem }` objects (they cross a thread boundary).
 */
export const HASHER_SOURCE = `function createBatchHasher(fs, crypto, bufferSize, counters, slot, afterChunk) {
  'use strict'
  const buffer = Buffer.allocUnsafeSlow(bufferSize)
  const fullChunk = BigInt(bufferSize)
  const bytesAt = 2 * slot
  const filesAt = 2 * slot + 1
  const openFlags = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK

  function failure(path, problem) {
    return { path: path, problem: problem }
  }

  function openFile(path) {
    try {
      return fs.openSync(path, openFlags)
    } catch (error) {
      if (error.code === 'ELOOP') throw failure(path, 'became a symbolic link while the tree was hashed (links are never followed)')
      if (error.code === 'ENOENT') throw failure(path, 'disappeared while the tree was hashed')
      if (error.code === 'EACCES' || error.code === 'EPERM') throw failure(path, 'is not readable (' + error.code + '): every file of a tree must be readable')
      throw failure(path, 'cannot be opened (' + error.code + ')')
    }
  }

  function readChunk(fd, path) {
    try {
      return fs.readSync(fd, buffer, 0, bufferSize, null)
    } catch (error) {
      if (error.code === 'EISDIR' || error.code === 'EAGAIN') throw failure(path, 'is no longer a regular file')
      throw failure(path, 'cannot be read (' + error.code + ')')
    }
  }

  function countBytes(n) {
    Atomics.add(counters, bytesAt, n === bufferSize ? fullChunk : BigInt(n))
  }

  function hashOpenFile(fd, path, size, digests, at) {
    let n = readChunk(fd, path)
    let total = n
    if (n < bufferSize && n >= size) {
      digests.set(crypto.hash('sha256', buffer.subarray(0, n), 'buffer'), at)
      countBytes(n)
      if (afterChunk) afterChunk(path, total)
      return total
    }
    const hash = crypto.createHash('sha256')
    while (n > 0) {
      hash.update(n === bufferSize ? buffer : buffer.subarray(0, n))
      countBytes(n)
      if (afterChunk) afterChunk(path, total)
      if (total > size || (n < bufferSize && total >= size)) break
      n = readChunk(fd, path)
      total += n
    }
    digests.set(hash.digest(), at)
    return total
  }

  return function hashBatch(paths, meta, slots, digests) {
    for (let i = 0; i < paths.length; i++) {
      const path = paths[i]
      const size = meta[3 * i]
      const fd = openFile(path)
      try {
        const total = hashOpenFile(fd, path, size, digests, 32 * slots[i])
        const after = fs.fstatSync(fd)
        if (!after.isFile()) throw failure(path, 'is no longer a regular file')
        if (total !== size || after.size !== size || after.mtimeMs !== meta[3 * i + 1] || after.ino !== meta[3 * i + 2]) {
          throw failure(path, 'changed while the tree was hashed (' + size + ' bytes when listed, ' + total + ' read, ' + after.size + ' now): hash a tree that nothing is writing to')
        }
      } finally {
        fs.closeSync(fd)
      }
      Atomics.add(counters, filesAt, 1n)
    }
  }
}`

/** A file as listed, to be hashed: `path` is what is opened and what errors name. */
export interface FileToHash {
  path: string
  size: number
  mtimeMs: number
  ino: number
}

/** A batch in the shape `hashBatch` takes, cheap to post to a worker (typed arrays). */
export interface Batch {
  paths: string[]
  meta: Float64Array
  slots: Int32Array
  /** Estimated cost in bytes (see `costOf`). */
  cost: number
}

export type HashBatch = (
  paths: readonly string[],
  meta: Float64Array,
  slots: Int32Array,
  digests: Uint8Array
) => void

/** What `hashBatch` throws. */
export interface HashFailure {
  path: string
  problem: string
}

export function isHashFailure(value: unknown): value is HashFailure {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as HashFailure).path === 'string' &&
    typeof (value as HashFailure).problem === 'string'
  )
}

type CreateBatchHasher = (
  fileSystem: typeof fs,
  nodeCrypto: typeof crypto,
  bufferSize: number,
  counters: BigInt64Array,
  slot: number,
  afterChunk?: AfterChunk
) => HashBatch

export type AfterChunk = (path: string, bytesSoFar: number) => void

/** Compiles HASHER_SOURCE on the calling thread. */
export function loadBatchHasher(
  bufferSize: number,
  counters: BigInt64Array,
  slot: number,
  afterChunk?: AfterChunk
): HashBatch {
  const create = new Function(`return ${HASHER_SOURCE}`)() as CreateBatchHasher
  return create(fs, crypto, bufferSize, counters, slot, afterChunk)
}

/** Groups files (already in scheduling order) into batches of about `targetCost`. */
export function makeBatches(
  files: readonly FileToHash[],
  order: readonly number[],
  costOf: (size: number) => number,
  targetCost: number
): Batch[] {
  const batches: Batch[] = []
  let start = 0
  while (start < order.length) {
    let end = start
    let cost = 0
    while (
      end < order.length &&
      (end === start || cost + costOf(files[order[end]].size) <= targetCost)
    ) {
      cost += costOf(files[order[end]].size)
      end++
    }
    const members = order.slice(start, end)
    const meta = new Float64Array(3 * members.length)
    members.forEach((index, i) => {
      const file = files[index]
      meta[3 * i] = file.size
      meta[3 * i + 1] = file.mtimeMs
      meta[3 * i + 2] = file.ino
    })
    batches.push({
      paths: members.map(index => files[index].path),
      meta,
      slots: Int32Array.from(members),
      cost
    })
    start = end
  }
  return batches
}
