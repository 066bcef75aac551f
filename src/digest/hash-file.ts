import { createHash, hash } from 'node:crypto'
import fs from 'node:fs'
import { entryLeafHash } from './merkle.js'

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

/** Files hashed by one thread in one go; `meta[3i..3i+2]` is file i's size (-1: not known yet), mtimeMs and inode. */
export interface BatchRequest {
  paths: string[]
  names: string[]
  meta: Float64Array
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

/** What a hashing thread answers to a batch. */
export type BatchReply = { result: BatchResult } | { failure: HashFailure }

/** What the hasher throws: a plain object, since it crosses a thread boundary. */
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

export interface HasherOptions {
  /** Bytes per read (docs/performance.md: sized from the CPU's L2 cache). */
  readSize: number
  /**
   * Bytes and files done at `[2 * slot]` and `[2 * slot + 1]`; may be shared between threads:
   * each slot has one writer, readers only display it.
   */
  progress: Float64Array
  slot: number
  /** Runs after every read (tests change files there). */
  afterChunk?: AfterChunk
}

export interface Hasher {
  /**
   * Hashes a batch synchronously (hashing threads, small files). A file of unknown size that
   * turns out bigger than `deferAbove` is not hashed: its digest is '' and `deferred` lists it
   * with its size, so the scheduler can hash the biggest files first.
   */
  hashBatch(request: BatchRequest): BatchResult
  /**
   * A file of known size, reading the next chunk on the libuv pool while this thread hashes
   * the current one (the calling thread, which keeps its event loop turning). Stops early when
   * `cancelled()` turns true.
   */
  hashLarge(
    file: FileToHash & { listed: FileIdentity },
    cancelled?: () => boolean
  ): Promise<{ digest: string; leaf: string }>
}

/** A file of unknown size up to this many reads is hashed where it was opened, not deferred. */
const HASH_IN_PLACE_READS = 8

/**
 * Per file: open without following links (O_NOFOLLOW) and without blocking on a FIFO swapped in
 * (O_NONBLOCK), read into reused buffers until a short read. A file that fits one read is one
 * syscall: its size is what was read (an empty read is fstat-ed, to reject a FIFO swapped in).
 * A bigger file is fstat-ed when first opened, and every read of it must add up to exactly
 * that size; it is fstat-ed again after the last read and rejected unless it still has that
 * size, mtime and inode (extended, truncated, rewritten or replaced while it was read).
 * Each file's RFC 6962 leaf hash is computed here too, in parallel, rather than on the calling
 * thread at the end. Digests are hex strings rather than Buffers: they are cheaper to allocate,
 * collect and post between threads.
 */
export function createHasher(options: HasherOptions): Hasher {
  const { readSize, progress, slot, afterChunk } = options
  const deferAbove = HASH_IN_PLACE_READS * readSize
  const buffer = Buffer.allocUnsafeSlow(readSize)
  let spare: Buffer | undefined

  function readChunk(fd: number, path: string): number {
    try {
      return fs.readSync(fd, buffer, 0, readSize, null)
    } catch (error) {
      throw readFailure(path, error)
    }
  }

  /** Whether another read is needed after one of n bytes brought the total to total. */
  function wantsMore(n: number, total: number, size: number): boolean {
    return n > 0 && total <= size && (n === readSize || total < size)
  }

  function counted(n: number, path: string, total: number): void {
    progress[2 * slot] += n
    afterChunk?.(path, total)
  }

  /** Streams the rest of a file of known size; the first n bytes are in the buffer. */
  function hashRest(fd: number, path: string, n: number, listed: FileIdentity): string {
    const sha = createHash('sha256')
    let total = n
    for (;;) {
      sha.update(n === readSize ? buffer : buffer.subarray(0, n))
      counted(n, path, total)
      if (!wantsMore(n, total, listed.size)) break
      n = readChunk(fd, path)
      total += n
    }
    checkAfterReads(fd, path, listed, total)
    return sha.digest('hex')
  }

  function hashBatch({ paths, names, meta }: BatchRequest): BatchResult {
    const count = paths.length
    const digests = new Array<string>(count)
    const sizes = new Float64Array(count)
    const leaves = new Array<string>(count)
    const deferred: number[] = []
    for (let i = 0; i < count; i++) {
      const path = paths[i]
      let size = meta[3 * i]
      const fd = openFile(path)
      try {
        const n = readChunk(fd, path)
        let digest: string
        if (size < 0 && n === readSize) {
          const stats = regularStats(fd, path)
          const listed = { size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino }
          if (stats.size > deferAbove) {
            deferred.push(i, listed.size, listed.mtimeMs, listed.ino)
            digests[i] = leaves[i] = ''
            continue
          }
          size = stats.size
          digest = hashRest(fd, path, n, listed)
        } else if (size < 0 || (n < readSize && n === size)) {
          if (n === 0) regularStats(fd, path)
          size = n
          digest = hash('sha256', buffer.subarray(0, n), 'hex')
          counted(n, path, n)
        } else {
          digest = hashRest(fd, path, n, { size, mtimeMs: meta[3 * i + 1], ino: meta[3 * i + 2] })
        }
        digests[i] = digest
        sizes[i] = size
        leaves[i] = entryLeafHash(names[i], size, digest)
      } finally {
        fs.closeSync(fd)
      }
      progress[2 * slot + 1] += 1
    }
    return { digests, sizes, leaves, deferred }
  }

  function hashLarge(
    file: FileToHash & { listed: FileIdentity },
    cancelled?: () => boolean
  ): Promise<{ digest: string; leaf: string }> {
    const { path, name, listed } = file
    spare ??= Buffer.allocUnsafeSlow(readSize)
    const buffers = [buffer, spare]
    const fd = openFile(path)
    const sha = createHash('sha256')
    let total = 0
    return new Promise((resolve, reject) => {
      const finish = (error?: unknown) => {
        let result: { digest: string; leaf: string } | undefined
        try {
          if (error) throw error
          checkAfterReads(fd, path, listed, total)
          const digest = sha.digest('hex')
          result = { digest, leaf: entryLeafHash(name, listed.size, digest) }
          progress[2 * slot + 1] += 1
        } catch (thrown) {
          error = thrown
        }
        fs.closeSync(fd)
        if (result) resolve(result)
        else reject(error)
      }
      const onRead = (which: number, error: NodeJS.ErrnoException | null, n: number) => {
        if (error) return finish(readFailure(path, error))
        if (cancelled?.()) return finish(failure(path, 'hashing cancelled'))
        total += n
        const more = wantsMore(n, total, listed.size)
        if (more) fs.read(fd, buffers[1 - which], 0, readSize, total, handlers[1 - which])
        if (n > 0) {
          sha.update(n === readSize ? buffers[which] : buffers[which].subarray(0, n))
          counted(n, path, total)
        }
        if (!more) finish()
      }
      const handlers = [onRead.bind(null, 0), onRead.bind(null, 1)]
      fs.read(fd, buffers[0], 0, readSize, 0, handlers[0])
    })
  }

  return { hashBatch, hashLarge }
}

/** A hashing thread's answer to a batch: its result, or the failure that stopped it. */
export function answerBatch(hasher: Hasher, request: BatchRequest): BatchReply {
  try {
    return { result: hasher.hashBatch(request) }
  } catch (error) {
    if (isHashFailure(error)) return { failure: { path: error.path, problem: error.problem } }
    const problem = error instanceof Error ? (error.stack ?? error.message) : String(error)
    return { failure: { path: '', problem } }
  }
}

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK

function failure(path: string, problem: string): HashFailure {
  return { path, problem }
}

function openFile(path: string): number {
  try {
    return fs.openSync(path, OPEN_FLAGS)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ELOOP')
      throw failure(
        path,
        'became a symbolic link while the tree was hashed (links are never followed)'
      )
    if (code === 'ENOENT') throw failure(path, 'disappeared while the tree was hashed')
    if (code === 'EACCES' || code === 'EPERM')
      throw failure(path, `is not readable (${code}): every file of a tree must be readable`)
    throw failure(path, `cannot be opened (${code})`)
  }
}

function readFailure(path: string, error: unknown): HashFailure {
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'EISDIR' || code === 'EAGAIN') return notRegular(path)
  return failure(path, `cannot be read (${code})`)
}

function notRegular(path: string): HashFailure {
  return failure(path, 'is no longer a regular file')
}

function regularStats(fd: number, path: string): fs.Stats {
  const stats = fs.fstatSync(fd)
  if (!stats.isFile()) throw notRegular(path)
  return stats
}

function checkAfterReads(fd: number, path: string, listed: FileIdentity, total: number): void {
  const after = regularStats(fd, path)
  const { size, mtimeMs, ino } = listed
  if (total !== size || after.size !== size || after.mtimeMs !== mtimeMs || after.ino !== ino) {
    throw failure(
      path,
      `changed while the tree was hashed (${size} bytes when opened, ${total} read, ${after.size} now): hash a tree that nothing is writing to`
    )
  }
}
