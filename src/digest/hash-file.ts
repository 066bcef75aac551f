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
 * - `hashBatch(paths, meta)`: synchronous, for workers and small files; returns the hex
 *   SHA-256 of each file. `meta[3i..3i+2]` is file i's size, mtimeMs and inode when listed.
 * - `hashLarge(path, size, mtimeMs, ino)`: a Promise of the hex SHA-256; reads the next chunk
 *   on the libuv pool while this thread hashes the current one (for the calling thread, which
 *   then keeps its event loop turning).
 * Progress goes to `progress[2 * slot]` (bytes) and `progress[2 * slot + 1]` (files), a
 * Float64Array that may be shared: each slot has one writer, readers only display it.
 * `afterChunk(path, bytesSoFar)`, if given, runs after every read (tests change files there).
 *
 * Per file: open without following links (O_NOFOLLOW) and without blocking on a FIFO swapped in
 * (O_NONBLOCK); read into reused buffers until a short read at or past the listed size. Exactly
 * the listed size must be read: a file that grows or shrinks between listing and reading is
 * rejected. A file that takes more than one read is also fstat-ed after the last one and
 * rejected unless it still has the listed size, mtime and inode (extended, rewritten or replaced
 * while it was read). A file that fits one read is one syscall, a snapshot; an fstat there would
 * add 15-20 % to the time per small file (Node 20 builds four Dates per Stats).
 * Failures are thrown as plain `{ path, problem }` objects (they cross a thread boundary).
 */
export const HASHER_SOURCE = `function createHasher(fs, crypto, bufferSize, progress, slot, afterChunk) {
  'use strict'
  const buffer = Buffer.allocUnsafeSlow(bufferSize)
  let spare
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
    if (error.code === 'EISDIR' || error.code === 'EAGAIN') return failure(path, 'is no longer a regular file')
    return failure(path, 'cannot be read (' + error.code + ')')
  }

  function readChunk(fd, path) {
    try {
      return fs.readSync(fd, buffer, 0, bufferSize, null)
    } catch (error) {
      throw readFailure(path, error)
    }
  }

  /** Whether another read is needed after one of n bytes brought the total to total. */
  function wantsMore(n, total, size) {
    return n > 0 && total <= size && (n === bufferSize || total < size)
  }

  function counted(n, path, total) {
    progress[2 * slot] += n
    if (afterChunk) afterChunk(path, total)
  }

  function changed(path, size, total, now) {
    const sizes = size + ' bytes when listed, ' + total + ' read' + (now === undefined ? '' : ', ' + now + ' now')
    return failure(path, 'changed while the tree was hashed (' + sizes + '): hash a tree that nothing is writing to')
  }

  function checkAfterReads(fd, path, size, mtimeMs, ino, total) {
    const after = fs.fstatSync(fd)
    if (!after.isFile()) throw failure(path, 'is no longer a regular file')
    if (total !== size || after.size !== size || after.mtimeMs !== mtimeMs || after.ino !== ino) throw changed(path, size, total, after.size)
  }

  function hashOpenFile(fd, path, size, mtimeMs, ino) {
    let n = readChunk(fd, path)
    let total = n
    if (!wantsMore(n, total, size)) {
      const digest = crypto.hash('sha256', buffer.subarray(0, n), 'hex')
      counted(n, path, total)
      if (total !== size) throw changed(path, size, total)
      return digest
    }
    const hash = crypto.createHash('sha256')
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

  function hashBatch(paths, meta) {
    const digests = new Array(paths.length)
    for (let i = 0; i < paths.length; i++) {
      const fd = openFile(paths[i])
      try {
        digests[i] = hashOpenFile(fd, paths[i], meta[3 * i], meta[3 * i + 1], meta[3 * i + 2])
      } finally {
        fs.closeSync(fd)
      }
      progress[2 * slot + 1] += 1
    }
    return digests
  }

  function hashLarge(path, size, mtimeMs, ino) {
    spare = spare || Buffer.allocUnsafeSlow(bufferSize)
    const buffers = [buffer, spare]
    const fd = openFile(path)
    const hash = crypto.createHash('sha256')
    let total = 0
    return new Promise((resolve, reject) => {
      const handlers = [onRead.bind(null, 0), onRead.bind(null, 1)]
      function finish(error) {
        let digest
        try {
          if (!error) {
            checkAfterReads(fd, path, size, mtimeMs, ino, total)
            digest = hash.digest('hex')
            progress[2 * slot + 1] += 1
          }
        } catch (thrown) {
          error = thrown
        }
        fs.closeSync(fd)
        if (error) reject(error)
        else resolve(digest)
      }
      function onRead(which, error, n) {
        if (error) return finish(readFailure(path, error))
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

/** A file as listed, to be hashed: `path` is what is opened and what errors name. */
export interface FileToHash {
  path: string
  size: number
  mtimeMs: number
  ino: number
}

export interface Hasher {
  /** Hex SHA-256 of each file; `meta` holds size, mtimeMs, ino of each in turn. */
  hashBatch(paths: readonly string[], meta: Float64Array): string[]
  hashLarge(path: string, size: number, mtimeMs: number, ino: number): Promise<string>
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
