import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createEngine, hashFiles, type EngineOptions } from '../../src/digest/engine.js'
import {
  createHasher,
  type AfterChunk,
  type BatchReply,
  type FileToHash
} from '../../src/digest/hash-file.js'
import { rootOfLeafHashes } from '../../src/digest/merkle.js'
import { manifestRoot, treeSha256 } from '../../src/digest/tree.js'
import type { HashProgress, ManifestEntry } from '../../src/digest/types.js'
import { listTree, sortByPathBytes } from '../../src/digest/walk.js'
import { inThreadWorkers, threadWorkers, type WorkerFactory } from '../../src/digest/workers.js'
import { VerifyError } from '../../src/errors.js'
import { testThreads } from '../helpers/digest-workers.js'

/** Small reads keep the files that cross read boundaries small. */
const READ_SIZE = 64 << 10
const threads = { readSize: READ_SIZE, workers: testThreads }

function hasherFor(afterChunk?: AfterChunk) {
  return createHasher({ readSize: READ_SIZE, progress: new Float64Array(2), slot: 0, afterChunk })
}

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-test-'))
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }))

/** mulberry32: a small seeded generator, so every run builds the same trees. */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Seeded noise; files are slices of it at random offsets. */
function noise(next: () => number, size: number): Buffer {
  const words = new Uint32Array(Math.ceil(size / 4))
  for (let i = 0; i < words.length; i++) words[i] = next() * 4294967296
  return Buffer.from(words.buffer, 0, size)
}

/**
 * 50-80 files, nested up to 4 deep, sizes 0 to 3 reads including the read-buffer edges, and one
 * file big enough to be deferred when its size is learnt.
 */
function writeRandomTree(dir: string, seed: number, extraBytes = 0): void {
  const next = random(seed)
  const pool = noise(next, 10 * READ_SIZE)
  const edges = [
    0,
    1,
    READ_SIZE - 1,
    READ_SIZE,
    READ_SIZE + 1,
    2 * READ_SIZE,
    3 * READ_SIZE,
    9 * READ_SIZE + 3
  ]
  const count = 50 + Math.floor(next() * 30)
  for (let i = 0; i < count; i++) {
    const depth = Math.floor(next() * 5)
    const parts = Array.from({ length: depth }, () => `d${Math.floor(next() * 4)}`)
    const roll = next()
    const size =
      i < edges.length
        ? edges[i]
        : roll < 0.7
          ? Math.floor(next() * 65536)
          : Math.floor(next() * 3 * READ_SIZE)
    const file = path.join(dir, ...parts, `f${i}${next() < 0.2 ? 'é' : ''}`)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    const offset = Math.floor(next() * (pool.length - size))
    fs.writeFileSync(file, pool.subarray(offset, offset + size))
  }
  if (extraBytes > 0) fs.writeFileSync(path.join(dir, 'big'), Buffer.alloc(extraBytes, seed))
}

/** The plain single-threaded reference: readFileSync and createHash, sorted by path bytes. */
function referenceManifest(dir: string): ManifestEntry[] {
  const entries: ManifestEntry[] = []
  const visit = (relative: string) => {
    for (const name of fs.readdirSync(path.join(dir, relative))) {
      const child = relative === '' ? name : `${relative}/${name}`
      const absolute = path.join(dir, child)
      if (fs.statSync(absolute).isDirectory()) visit(child)
      else {
        const content = fs.readFileSync(absolute)
        const sha256 = createHash('sha256').update(content).digest('hex')
        entries.push({ path: child, size: content.length, sha256 })
      }
    }
  }
  visit('')
  return entries.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)))
}

async function engineDigest(dir: string, options: EngineOptions) {
  const files = await listTree(dir)
  const hashed = await hashFiles(files, options)
  const sorted = sortByPathBytes(
    files.map((file, i) => ({ name: file.name, ...hashed[i] })),
    file => file.name
  )
  return {
    root: rootOfLeafHashes(sorted.map(file => file.leaf)),
    manifest: sorted.map(({ name, size, sha256 }) => ({ path: name, size, sha256 }))
  }
}

describe('the pooled engine equals a single-threaded reference on random trees', () => {
  const seeds = [1, 2, 3]
  const references = new Map<number, ManifestEntry[]>()
  beforeAll(() => {
    for (const seed of seeds) {
      const dir = path.join(scratch, `random-${seed}`)
      writeRandomTree(dir, seed)
      references.set(seed, referenceManifest(dir))
    }
  })

  const factories: Record<string, WorkerFactory> = {
    threads: testThreads,
    'in-thread': inThreadWorkers
  }
  const cases = seeds.flatMap(seed =>
    [
      [2, 'threads'],
      [4, 'threads'],
      [2, 'in-thread']
    ].map(([concurrency, kind]) => [seed, concurrency, kind] as [number, number, string])
  )
  it.each(cases)('seed %i, %i workers (%s)', async (seed, concurrency, kind) => {
    const reference = references.get(seed)!
    expect(reference.length).toBeGreaterThanOrEqual(50)
    const dir = path.join(scratch, `random-${seed}`)
    const workers = factories[kind]
    const digest = await engineDigest(dir, {
      concurrency,
      inlineCost: 0,
      readSize: READ_SIZE,
      workers
    })
    expect(digest.manifest).toEqual(reference)
    expect(digest.root).toBe(manifestRoot(reference))
  })

  it.each(seeds)('seed %i, on the calling thread only', async seed => {
    const dir = path.join(scratch, `random-${seed}`)
    const digest = await engineDigest(dir, { concurrency: 1, readSize: READ_SIZE })
    expect(digest.manifest).toEqual(references.get(seed))
  })

  it('treeSha256 over a tree big enough for the pool', async () => {
    const dir = path.join(scratch, 'random-big')
    writeRandomTree(dir, 9, 80 << 20)
    const reference = referenceManifest(dir)
    for (const concurrency of [1, 2, 4]) {
      const digest = await treeSha256(dir, { concurrency, workers: testThreads })
      expect(digest.manifest).toEqual(reference)
      expect(digest.root).toBe(manifestRoot(reference))
    }
  })
})

const identity = (file: string) => {
  const { size, mtimeMs, ino } = fs.statSync(file)
  return { size, mtimeMs, ino }
}

describe('a file that changes while it is hashed', () => {
  const size = 3 * READ_SIZE + 100

  /** Hashes one file through `hashBatch` (workers) or `hashLarge` (the calling thread). */
  async function hashWith(
    mode: 'hashBatch' | 'hashLarge',
    file: string,
    afterChunk: AfterChunk,
    listed = identity(file)
  ): Promise<unknown> {
    const hasher = hasherFor(afterChunk)
    try {
      if (mode === 'hashLarge')
        return (await hasher.hashLarge({ path: file, name: 'f', listed })).digest
      const meta = Float64Array.of(listed.size, listed.mtimeMs, listed.ino)
      return hasher.hashBatch({ paths: [file], names: ['f'], meta }).digests[0]
    } catch (failure) {
      return failure
    }
  }

  let count = 0
  function freshFile(length = size): string {
    const file = path.join(scratch, `changing-${count++}`)
    fs.writeFileSync(file, Buffer.alloc(length, 1))
    return file
  }

  const changed = (file: string, sizes: string) => ({
    path: file,
    problem: `changed while the tree was hashed (${sizes}): hash a tree that nothing is writing to`
  })

  describe.each(['hashBatch', 'hashLarge'] as const)('through %s', mode => {
    it('is hashed when nothing changes (the hook alone changes nothing)', async () => {
      const file = freshFile()
      const seen: number[] = []
      const expected = createHash('sha256').update(fs.readFileSync(file)).digest('hex')
      expect(await hashWith(mode, file, (_path, bytes) => seen.push(bytes))).toBe(expected)
      expect(seen).toEqual([READ_SIZE, 2 * READ_SIZE, 3 * READ_SIZE, size])
    })

    it('grows after the first chunk: more bytes are read than expected', async () => {
      const file = freshFile()
      const failure = await hashWith(mode, file, (_path, bytes) => {
        if (bytes === READ_SIZE) fs.appendFileSync(file, Buffer.alloc(READ_SIZE))
      })
      const sizes = `${size} bytes when opened, ${4 * READ_SIZE} read, ${size + READ_SIZE} now`
      expect(failure).toEqual(changed(file, sizes))
    })

    it('grows after the last read: fstat after reading sees the new size', async () => {
      const file = freshFile()
      const failure = await hashWith(mode, file, (_path, bytes) => {
        if (bytes === size) fs.appendFileSync(file, 'x')
      })
      expect(failure).toEqual(
        changed(file, `${size} bytes when opened, ${size} read, ${size + 1} now`)
      )
    })

    it('shrinks while it is read', async () => {
      const file = freshFile()
      const failure = await hashWith(mode, file, (_path, bytes) => {
        if (bytes === READ_SIZE) fs.truncateSync(file, READ_SIZE + 5)
      })
      // hashLarge may have read the second chunk already when the file is truncated.
      const reads = mode === 'hashLarge' ? [READ_SIZE + 5, 2 * READ_SIZE] : [READ_SIZE + 5]
      expect(
        reads.map(read =>
          changed(file, `${size} bytes when opened, ${read} read, ${READ_SIZE + 5} now`)
        )
      ).toContainEqual(failure)
    })

    it('is rewritten in place with the same size (its mtime changes)', async () => {
      const file = freshFile()
      const failure = await hashWith(mode, file, (_path, bytes) => {
        if (bytes !== READ_SIZE) return
        const fd = fs.openSync(file, 'r+')
        fs.writeSync(fd, Buffer.from('tampered'), 0, 8, 0)
        fs.closeSync(fd)
        fs.utimesSync(file, new Date(0), new Date(1_000_000))
      })
      expect(failure).toEqual(changed(file, `${size} bytes when opened, ${size} read, ${size} now`))
    })
  })

  it('hashLarge stops reading once cancelled', async () => {
    const file = freshFile()
    let chunks = 0
    const hasher = hasherFor(() => chunks++)
    const listed = identity(file)
    await expect(
      hasher.hashLarge({ path: file, name: 'f', listed }, () => chunks >= 2)
    ).rejects.toEqual({ path: file, problem: 'hashing cancelled' })
    expect(chunks).toBe(2) // of 4
  })

  it('a small file (one read) that grew after its size was taken', async () => {
    const file = freshFile(10)
    const listed = identity(file)
    fs.appendFileSync(file, 'x')
    expect(await hashWith('hashBatch', file, () => undefined, listed)).toEqual(
      changed(file, '10 bytes when opened, 11 read, 11 now')
    )
  })

  it('a small file (one read) that shrank after its size was taken', async () => {
    const file = freshFile(10)
    const listed = identity(file)
    fs.truncateSync(file, 0)
    expect(await hashWith('hashBatch', file, () => undefined, listed)).toEqual(
      changed(file, '10 bytes when opened, 0 read, 0 now')
    )
  })
})

describe('files of unknown size', () => {
  it('small ones are hashed where they are opened; big ones are deferred with their size', () => {
    const dir = fs.mkdtempSync(path.join(scratch, 'unknown-'))
    const files = {
      small: 'abc',
      medium: noise(random(5), 8 * READ_SIZE),
      big: Buffer.alloc(8 * READ_SIZE + 1)
    }
    for (const [name, content] of Object.entries(files))
      fs.writeFileSync(path.join(dir, name), content)
    const names = Object.keys(files)
    const result = hasherFor().hashBatch({
      paths: names.map(name => path.join(dir, name)),
      names,
      meta: Float64Array.of(-1, 0, 0, -1, 0, 0, -1, 0, 0)
    })
    const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex')
    expect(result.digests).toEqual([sha256(files.small), sha256(files.medium), ''])
    expect([...result.sizes.subarray(0, 2)]).toEqual([3, 8 * READ_SIZE])
    const { mtimeMs, ino } = identity(path.join(dir, 'big'))
    expect(result.deferred).toEqual([2, 8 * READ_SIZE + 1, mtimeMs, ino])
  })

  it('an empty read is checked to be a regular file (a FIFO swapped in is rejected)', () => {
    const dir = fs.mkdtempSync(path.join(scratch, 'fifo-'))
    const pipe = path.join(dir, 'pipe')
    execFileSync('mkfifo', [pipe])
    const request = { paths: [pipe], names: ['pipe'], meta: Float64Array.of(-1, 0, 0) }
    expect(() => hasherFor().hashBatch(request)).toThrow(
      expect.objectContaining({ path: pipe, problem: 'is no longer a regular file' })
    )
  })
})

describe('a tree that changes between listing and hashing', () => {
  const A_SIZE = 2 * READ_SIZE + 10
  async function hashAfter(change: (files: FileToHash[]) => void, options: EngineOptions) {
    const dir = fs.mkdtempSync(path.join(scratch, 'changes-'))
    fs.writeFileSync(path.join(dir, 'a'), Buffer.alloc(A_SIZE, 2))
    fs.writeFileSync(path.join(dir, 'b'), 'b')
    const files = (await listTree(dir))
      .map(file => ({ ...file, listed: identity(file.path) }))
      .sort((x, y) => x.name.localeCompare(y.name))
    change(files)
    try {
      await hashFiles(files, options)
    } catch (error) {
      expect(error).toBeInstanceOf(VerifyError)
      expect((error as VerifyError).verdict).toBe('invalid')
      return (error as VerifyError).message
    }
    throw new Error('the change went unnoticed')
  }

  for (const [mode, options] of [
    ['in a worker', { inlineCost: 0, concurrency: 2, ...threads }],
    ['on the calling thread', { concurrency: 1, readSize: READ_SIZE }]
  ] as const) {
    it(`a file appended to (${mode})`, async () => {
      const message = await hashAfter(files => fs.appendFileSync(files[0].path, 'more'), options)
      expect(message).toContain(
        `/a: changed while the tree was hashed (${A_SIZE} bytes when opened, ${A_SIZE + 4} read, ${A_SIZE + 4} now)`
      )
    })

    it(`a file replaced by another of the same size (${mode})`, async () => {
      const message = await hashAfter(files => {
        const { mtimeMs } = identity(files[0].path)
        const other = `${files[0].path}.new`
        fs.writeFileSync(other, Buffer.alloc(A_SIZE, 3))
        fs.utimesSync(other, new Date(mtimeMs), new Date(mtimeMs))
        fs.renameSync(other, files[0].path)
      }, options)
      expect(message).toContain(
        `/a: changed while the tree was hashed (${A_SIZE} bytes when opened, ${A_SIZE} read, ${A_SIZE} now)`
      )
    })

    it(`a file replaced by a symlink (${mode})`, async () => {
      const message = await hashAfter(files => {
        fs.rmSync(files[1].path)
        fs.symlinkSync(files[0].path, files[1].path)
      }, options)
      expect(message).toMatch(/\/b: became a symbolic link while the tree was hashed/)
    })

    it(`a file deleted (${mode})`, async () => {
      const message = await hashAfter(files => fs.rmSync(files[1].path), options)
      expect(message).toMatch(/\/b: disappeared while the tree was hashed/)
    })
  }
})

describe('the engine while files are still being added', () => {
  it('hashes as files arrive and reports the first failure from add, so a listing stops', async () => {
    const dir = fs.mkdtempSync(path.join(scratch, 'streaming-'))
    const good = path.join(dir, 'good')
    fs.writeFileSync(good, 'x')
    const engine = createEngine({ concurrency: 2, inlineCost: 0, ...threads })
    try {
      engine.add({ path: good, name: 'good' })
      engine.add({ path: path.join(dir, 'gone'), name: 'gone' })
      let thrown: unknown
      for (let waited = 0; thrown === undefined && waited < 20_000; waited += 20) {
        await new Promise(resolve => setTimeout(resolve, 20))
        try {
          engine.add({ path: good, name: 'good' })
        } catch (error) {
          thrown = error
        }
      }
      expect(thrown).toBeInstanceOf(VerifyError)
      expect((thrown as VerifyError).message).toBe(
        `${path.join(dir, 'gone')}: disappeared while the tree was hashed`
      )
      await expect(engine.finish()).rejects.toBe(thrown)
    } finally {
      engine.close()
    }
  })

  it('gives work already queued to the workers as soon as they start', async () => {
    const dir = fs.mkdtempSync(path.join(scratch, 'queued-'))
    const files = ['a', 'b'].map(name => {
      const file = path.join(dir, name)
      fs.writeFileSync(file, Buffer.alloc(9 << 20, name))
      return { path: file, name, listed: identity(file) }
    })
    const engine = createEngine({ concurrency: 2, inlineCost: 0, ...threads })
    const byWorkers = () =>
      engine
        .filesPerThread()
        .slice(1)
        .reduce((sum, n) => sum + n, 0)
    try {
      for (const file of files) engine.add(file) // both queued; the second add starts the pool
      for (let waited = 0; byWorkers() === 0 && waited < 20_000; waited += 20)
        await new Promise(resolve => setTimeout(resolve, 20))
      expect(byWorkers()).toBeGreaterThan(0) // before finish: the workers' doing
      const hashed = await engine.finish()
      expect(hashed.map(file => file.size)).toEqual([9 << 20, 9 << 20])
      expect(engine.filesPerThread()).toEqual([0, 1, 1]) // the calling thread only schedules
    } finally {
      engine.close()
    }
  })

  it.each([
    [['a', 'c', 'b'], 'b'],
    [['b', 'c', 'a'], 'b']
  ])('hashes the largest file first (added in the order %j)', async (order, first) => {
    // a: 9 MiB, b: 12 MiB, c: 10 MiB; b and c are deleted after listing, so the error names the
    // first of them opened: in add order that would be c in the first case, last-in-first-out
    // would give c in the second; largest first gives b in both.
    const dir = fs.mkdtempSync(path.join(scratch, 'order-'))
    const sizes: Record<string, number> = { a: 9 << 20, b: 12 << 20, c: 10 << 20 }
    const files = order.map(name => {
      const file = path.join(dir, name)
      fs.writeFileSync(file, Buffer.alloc(sizes[name]))
      return { path: file, name, listed: identity(file) }
    })
    for (const gone of ['b', 'c']) fs.rmSync(path.join(dir, gone))
    await expect(hashFiles(files, { concurrency: 1 })).rejects.toThrow(
      `${path.join(dir, first)}: disappeared while the tree was hashed`
    )
  })

  it('reports progress while hashing, and completion at the end', async () => {
    const dir = path.join(scratch, 'progress')
    writeRandomTree(dir, 7)
    const files = await listTree(dir)
    const reports: HashProgress[] = []
    await hashFiles(files, {
      concurrency: 2,
      inlineCost: 0,
      ...threads,
      onProgress: p => reports.push(p)
    })
    const bytesTotal = referenceManifest(dir).reduce((sum, entry) => sum + entry.size, 0)
    expect(reports.at(-1)).toEqual({
      bytesDone: bytesTotal,
      bytesTotal,
      filesDone: files.length,
      filesTotal: files.length
    })
    for (let i = 1; i < reports.length; i++) {
      expect(reports[i].bytesDone).toBeGreaterThanOrEqual(reports[i - 1].bytesDone)
      expect(reports[i].bytesTotal).toBeGreaterThanOrEqual(reports[i].bytesDone)
    }
  })
})

describe('the hashing threads', () => {
  /** Sends one batch to a worker from `factory` and returns its answer. */
  async function ask(factory: WorkerFactory, paths: string[]): Promise<BatchReply> {
    const progress = new SharedArrayBuffer(32)
    let worker: ReturnType<WorkerFactory> | undefined
    try {
      return await new Promise<BatchReply>((reply, fail) => {
        worker = factory({ readSize: READ_SIZE, progress, slot: 1 }, { reply, fail })
        worker.send({
          paths,
          names: paths.map((_, i) => `f${i}`),
          meta: new Float64Array(3 * paths.length).fill(-1)
        })
      })
    } finally {
      worker?.close()
    }
  }

  it.each([
    ['a real thread running the worker module', testThreads],
    ['the in-thread implementation', inThreadWorkers]
  ])('%s answers a batch with digests and leaf hashes, or the failure', async (_kind, factory) => {
    const file = path.join(scratch, 'for-the-worker')
    fs.writeFileSync(file, 'hello')
    const reply = await ask(factory, [file])
    const sha256 = createHash('sha256').update('hello').digest('hex')
    expect(reply).toEqual({
      result: {
        digests: [sha256],
        sizes: Float64Array.of(5),
        leaves: [manifestRoot([{ path: 'f0', size: 5, sha256 }])],
        deferred: []
      }
    })
    const missing = path.join(scratch, 'not-there')
    expect(await ask(factory, [file, missing])).toEqual({
      failure: { path: missing, problem: 'disappeared while the tree was hashed' }
    })
  })

  it('a worker module that is missing is named, with the fix', async () => {
    const dir = fs.mkdtempSync(path.join(scratch, 'no-worker-'))
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dir, `f${i}`), `${i}`)
    const script = new URL(`file://${path.join(dir, 'digest-worker.js')}`)
    const error = await treeSha256(dir, {
      concurrency: 2,
      workers: threadWorkers({ script })
    }).catch((thrown: unknown) => thrown)
    expect(error).toBeInstanceOf(VerifyError)
    expect((error as VerifyError).verdict).toBe('unverifiable')
    expect((error as VerifyError).message).toBe(
      `hashing failed: the hashing thread's module ${path.join(dir, 'digest-worker.js')} is missing: it ships beside the bundle (npm run package builds it)`
    )
  })
})
