import crypto from 'node:crypto'
import fs from 'node:fs'

/**
 * The file-hashing code, as JavaScript source. It is source text rather than a TypeScript
 * function because it must also run in worker threads: the code is bundled by ncc into one
 * file, so a worker cannot load a separate script, and a stringified function would carry
 * coverage instrumentation under jest. The calling thread compiles the same text
 * (`loadHasher`), so every path runs one implementation. Node built-ins only.
 *
 * `createHasher(fs, crypto, bufferSize, progress, slot, afterChunk?)` returns
 * - `hashBatch(paths, names, meta)`, synchronous (workers, small files). `meta[3i..3i+2]` is
 *   file i's size, mtimeMs and inode, or size -1 when the size is not known yet. Returns
 *   `{ digests, sizes, leaves, deferred }`: hex SHA-256, size, and the hex RFC 6962 leaf hash
 *   `SHA256(0x00 || u64be(len(name)) || name || u64be(size) || sha256)` of each file (computed
 *   here, in parallel, rather than on the calling thread at the end). Hex strings rather than
 *   Buffers: they are cheaper to allocate, collect and post between threads.
 *   A file of unknown size that fills the first read is not hashed: its digest is '' and
 *   `deferred` lists `i, size, mtimeMs, ino` for it, so the scheduler can hash the biggest
 *   files first.
 * - `hashLarge(path, name, size, mtimeMs, ino, cancelled?)`: a Promise of `{ digest, leaf }` for
 *   a file of known size; it reads the next chunk on the libuv pool while this thread hashes the
 *   current one (for the calling thread, which then keeps its event loop turning). It stops
 *   early when `cancelled()` turns true.
 * Progress goes to `progress[2 * slot]` (bytes) and `progress[2 * slot + 1]` (files), a
 * Float64Array that may be shared: each slot has one writer, readers only display it.
 * `afterChunk(path, bytesSoFar)`, if given, runs after every read (tests change files there).
 *
 * Per file: open without following links (O_NOFOLLOW) and without blocking on a FIFO swapped in
 * (O_NONBLOCK), read into reused buffers until a short read. A file that fits one read is one
 * syscall: its size is what was read (an empty read is fstat-ed, to reject a FIFO swapped in).
 * A bigger file is fstat-ed when first opened, and every read of it must add up to exactly
 * that size; it is fstat-ed again after the last read and rejected unless it still has that
 * size, mtime and inode (extended, truncated, rewritten or replaced while it was read).
 * Failures are thrown as plain `{ path, problem }` objects (they cross a thread boundary).
 */
export const HASHER_SOURCE = `function createHasher(fs, crypto, bufferSize, progress, slot, afterChunk) {
  'use strict'
  const buffer = Buffer.allocUnsafeSlow(bufferSize)
  let spare
  let leafScratch = Buffer.allocUnsafeSlow(4096)
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

  function readFailure(path, error) {
    if (error.code === 'EISDIR' || error.code === 'EAGAIN') return notRegular(path)
    return failure(path, 'cannot be read (' + error.code + ')')
  }

  function notRegular(path) {
    return failure(path, 'is no longer a regular file')
  }

  function readChunk(fd, path) {
    try {
      return fs.readSync(fd, buffer, 0, bufferSize, null)
    } catch (error) {
      throw readFailure(path, error)
    }
  }

  function regularStats(fd, path) {
    const stats = fs.fstatSync(fd)
    if (!stats.isFile()) throw notRegular(path)
    return stats
  }

  /** Whether another read is needed after one of n bytes brought the total to total. */
  function wantsMore(n, total, size) {
    return n > 0 && total <= size && (n === bufferSize || total < size)
  }

  function counted(n, path, total) {
    progress[2 * slot] += n
    if (afterChunk) afterChunk(path, total)
  }

  function checkAfterReads(fd, path, size, mtimeMs, ino, total) {
    const after = regularStats(fd, path)
    if (total !== size || after.size !== size || after.mtimeMs !== mtimeMs || after.ino !== ino) {
      throw failure(path, 'changed while the tree was hashed (' + size + ' bytes when opened, ' + total + ' read, ' +
        after.size + ' now): hash a tree that nothing is writing to')
    }
  }

  function writeU64(target, at, value) {
    target.writeUInt32BE(Math.floor(value / 4294967296), at)
    target.writeUInt32BE(value >>> 0, at + 4)
  }

  function leafHash(name, size, digest) {
    const nameLength = Buffer.byteLength(name, 'utf8')
    const length = 17 + nameLength + 32
    if (leafScratch.length < length) leafScratch = Buffer.allocUnsafeSlow(2 * length)
    leafScratch[0] = 0
    writeU64(leafScratch, 1, nameLength)
    leafScratch.write(name, 9, 'utf8')
    writeU64(leafScratch, 9 + nameLength, size)
    leafScratch.write(digest, 17 + nameLength, 'hex')
    return crypto.hash('sha256', leafScratch.subarray(0, length), 'hex')
  }

  /** Streams the rest of a file of known size; the first n bytes are in the buffer. */
  function hashRest(fd, path, n, size, mtimeMs, ino) {
    const hash = crypto.createHash('sha256')
    let total = n
    for (;;) {
      hash.update(n === bufferSize ? buffer : buffer.subarray(0, n))
      counted(n, path, total)
      if (!wantsMore(n, total, size)) break
      n = readChunk(fd, path)
      total += n
    }
    checkAfterReads(fd, path, size, mtimeMs, ino, total)
    return hash.digest('hex')
  }

  function hashBatch(paths, names, meta) {
    const count = paths.length
    const digests = new Array(count)
    const sizes = new Float64Array(count)
    const leaves = new Array(count)
    const deferred = []
    for (let i = 0; i < count; i++) {
      const path = paths[i]
      let size = meta[3 * i]
      const fd = openFile(path)
      try {
        const n = readChunk(fd, path)
        let digest
        if (size < 0 && n === bufferSize) {
          const stats = regularStats(fd, path)
          deferred.push(i, stats.size, stats.mtimeMs, stats.ino)
          digests[i] = leaves[i] = ''
          continue
        }
        if (size < 0 || (n < bufferSize && n === size)) {
          if (n === 0) regularStats(fd, path)
          size = n
          digest = crypto.hash('sha256', buffer.subarray(0, n), 'hex')
          counted(n, path, n)
        } else digest = hashRest(fd, path, n, size, meta[3 * i + 1], meta[3 * i + 2])
        digests[i] = digest
        sizes[i] = size
        leaves[i] = leafHash(names[i], size, digest)
      } finally {
        fs.closeSync(fd)
      }
      progress[2 * slot + 1] += 1
    }
    return { digests: digests, sizes: sizes, leaves: leaves, deferred: deferred }
  }

  function hashLarge(path, name, size, mtimeMs, ino, cancelled) {
    spare = spare || Buffer.allocUnsafeSlow(bufferSize)
    const buffers = [buffer, spare]
    const fd = openFile(path)
    const hash = crypto.createHash('sha256')
    let total = 0
    return new Promise((resolve, reject) => {
      const handlers = [onRead.bind(null, 0), onRead.bind(null, 1)]
      function finish(error) {
        let result
        try {
          if (error) throw error
          checkAfterReads(fd, path, size, mtimeMs, ino, total)
          const digest = hash.digest('hex')
          result = { digest: digest, leaf: leafHash(name, size, digest) }
          progress[2 * slot + 1] += 1
        } catch (thrown) {
          error = thrown
        }
        fs.closeSync(fd)
        if (error) reject(error)
        else resolve(result)
      }
      function onRead(which, error, n) {
        if (error) return finish(readFailure(path, error))
        if (cancelled && cancelled()) return finish(failure(path, 'hashing cancelled'))
        total += n
        const more = wantsMore(n, total, size)
        if (more) fs.read(fd, buffers[1 - which], 0, bufferSize, total, handlers[1 - which])
        if (n > 0) {
          hash.update(n === bufferSize ? buffers[which] : buffers[which].subarray(0, n))
          counted(n, path, total)
        }
        if (!more) finish()
      }
      fs.read(fd, buffers[0], 0, bufferSize, 0, handlers[0])
    })
  }

  return { hashBatch: hashBatch, hashLarge: hashLarge }
}`

/** What a file looked like when it was listed; hashing fails if it changes. */
export interface FileIdentity {
  size: number
  mtimeMs: number
  ino: number
}

/**
 * A file to hash: `path` is what is opened and what errors name, `name` its path in the tree
 * (for the leaf hash). Without `listed`, the size is taken when the file is opened.
 */
export interface FileToHash {
  path: string
  name: string
  listed?: FileIdentity
}

export interface BatchResult {
  /** Hex SHA-256 per file, '' for a deferred one. */
  digests: string[]
  sizes: Float64Array
  /** Hex RFC 6962 leaf hash per file, '' for a deferred one. */
  leaves: string[]
  /** `index, size, mtimeMs, ino` per file left for later (big, its size was not known). */
  deferred: number[]
}

export interface Hasher {
  hashBatch(paths: readonly string[], names: readonly string[], meta: Float64Array): BatchResult
  hashLarge(
    path: string,
    name: string,
    size: number,
    mtimeMs: number,
    ino: number,
    cancelled?: () => boolean
  ): Promise<{ digest: string; leaf: string }>
}

/** What the hasher throws. */
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

export type AfterChunk = (path: string, bytesSoFar: number) => void

type CreateHasher = (
  fileSystem: typeof fs,
  nodeCrypto: typeof crypto,
  bufferSize: number,
  progress: Float64Array,
  slot: number,
  afterChunk?: AfterChunk
) => Hasher

/** Compiles HASHER_SOURCE on the calling thread. */
export function loadHasher(
  bufferSize: number,
  progress: Float64Array,
  slot: number,
  afterChunk?: AfterChunk
): Hasher {
  const create = new Function(`return ${HASHER_SOURCE}`)() as CreateHasher
  return create(fs, crypto, bufferSize, progress, slot, afterChunk)
}
