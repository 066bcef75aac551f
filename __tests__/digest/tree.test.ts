import { afterAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { formatManifest, writeManifest } from '../../src/digest/manifest.js'
import { manifestRoot, treeSha256 } from '../../src/digest/tree.js'
import type { HashProgress, ManifestEntry } from '../../src/digest/types.js'
import { VerifyError } from '../../src/errors.js'
import { testThreads, tsLoader } from '../helpers/digest-workers.js'
import { vectorsDir } from '../helpers/paths.js'

interface TreeCase {
  name: string
  files: Record<string, string>
  manifest: ManifestEntry[]
  root: string
}

const treeCases = (
  JSON.parse(fs.readFileSync(path.join(vectorsDir, 'tree.json'), 'utf8')) as { cases: TreeCase[] }
).cases

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tree-test-'))
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }))
let dirCount = 0
function freshDir(): string {
  const dir = path.join(scratch, `t${dirCount++}`)
  fs.mkdirSync(dir)
  return dir
}

function writeTree(dir: string, files: Record<string, string | Buffer>): void {
  for (const [relative, content] of Object.entries(files)) {
    const file = path.join(dir, relative)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, content)
  }
}

async function rejection(promise: Promise<unknown>): Promise<VerifyError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e
  )
  expect(error).toBeInstanceOf(VerifyError)
  expect((error as VerifyError).verdict).toBe('invalid')
  return error as VerifyError
}

describe('treeSha256 vectors (tree.json)', () => {
  it.each(treeCases.map(c => [c.name, c] as const))('%s', async (_name, vector) => {
    const dir = freshDir()
    writeTree(
      dir,
      Object.fromEntries(
        Object.entries(vector.files).map(([name, b64]) => [name, Buffer.from(b64, 'base64')])
      )
    )
    const digest = await treeSha256(dir)
    expect(digest.manifest).toEqual(vector.manifest)
    expect(digest.root).toBe(vector.root)
    expect(manifestRoot(vector.manifest)).toBe(vector.root)
  })
})

describe('path order', () => {
  it('is UTF-8 byte order, also against characters beyond U+FFFF', async () => {
    const dir = freshDir()
    // UTF-16 would put U+1F600 (a surrogate pair, 0xD83D…) before U+E000; UTF-8 bytes do not.
    writeTree(dir, { '\u{1F600}': '1', '\uE000': '2', 'z/\u{10000}': '3', 'z-': '4' })
    const digest = await treeSha256(dir)
    expect(digest.manifest.map(entry => entry.path)).toEqual([
      'z-',
      'z/\u{10000}',
      '\uE000',
      '\u{1F600}'
    ])
  })
})

describe('single file', () => {
  const oneFile = treeCases.find(c => c.name === 'one-file')!
  const content = Buffer.from(oneFile.files['model.bin'], 'base64')

  it('is a tree of one entry named by its base name', async () => {
    const file = path.join(freshDir(), 'model.bin')
    fs.writeFileSync(file, content)
    const digest = await treeSha256(file)
    expect(digest.root).toBe(oneFile.root)
    expect(digest.manifest).toEqual(oneFile.manifest)
  })

  it('takes singleName as the entry name', async () => {
    const file = path.join(freshDir(), 'downloaded-under-another-name')
    fs.writeFileSync(file, content)
    const digest = await treeSha256(file, { singleName: 'model.bin' })
    expect(digest.root).toBe(oneFile.root)
    expect(digest.manifest.map(entry => entry.path)).toEqual(['model.bin'])
    expect((await treeSha256(file)).root).not.toBe(oneFile.root)
  })
})

describe('treeSha256 rejects what is not a tree', () => {
  it.each([
    [
      'a symlink to a file',
      (dir: string) => fs.symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'))
    ],
    [
      'a symlink to a directory',
      (dir: string) => fs.symlinkSync(path.join(dir, 'sub'), path.join(dir, 'link'))
    ],
    [
      'a dangling symlink',
      (dir: string) => fs.symlinkSync(path.join(dir, 'missing'), path.join(dir, 'link'))
    ],
    [
      'a symlink loop',
      (dir: string) => fs.symlinkSync(path.join(dir, 'link'), path.join(dir, 'link'))
    ]
  ])('%s', async (_name, makeLink) => {
    const dir = freshDir()
    writeTree(dir, { real: 'x', 'sub/inner': 'y' })
    makeLink(dir)
    const error = await rejection(treeSha256(dir))
    expect(error.message).toContain(path.join(dir, 'link'))
    expect(error.message).toContain('symbolic link')
    expect(error.message).toContain('PROTOCOL.md section 1')
  })

  it('a symlink nested in a subdirectory', async () => {
    const dir = freshDir()
    writeTree(dir, { 'a/b/file': 'x' })
    fs.symlinkSync('file', path.join(dir, 'a/b/link'))
    expect((await rejection(treeSha256(dir))).message).toContain(path.join(dir, 'a/b/link'))
  })

  it('a target that is itself a symlink, to a directory or to a file', async () => {
    const dir = freshDir()
    writeTree(dir, { 'real/file': 'x' })
    fs.symlinkSync(path.join(dir, 'real'), path.join(dir, 'dir-link'))
    fs.symlinkSync(path.join(dir, 'real/file'), path.join(dir, 'file-link'))
    for (const link of ['dir-link', 'file-link']) {
      const error = await rejection(treeSha256(path.join(dir, link)))
      expect(error.message).toContain(`${path.join(dir, link)}: is a symbolic link`)
    }
  })

  it('a FIFO (made with mkfifo)', async () => {
    const dir = freshDir()
    writeTree(dir, { file: 'x' })
    execFileSync('mkfifo', [path.join(dir, 'pipe')])
    const error = await rejection(treeSha256(dir))
    expect(error.message).toContain(`${path.join(dir, 'pipe')}: is a FIFO`)
    expect((await rejection(treeSha256(path.join(dir, 'pipe')))).message).toContain('is a FIFO')
  })

  it('a socket', async () => {
    const dir = freshDir()
    writeTree(dir, { file: 'x' })
    const server = net.createServer()
    await new Promise<void>(resolve => server.listen(path.join(dir, 'sock'), resolve))
    try {
      expect((await rejection(treeSha256(dir))).message).toContain('is a socket')
    } finally {
      server.close()
    }
  })

  it('a device', async () => {
    expect((await rejection(treeSha256('/dev/null'))).message).toContain('/dev/null: is a device')
  })

  it('a file name that is not valid UTF-8, shown with its bytes escaped', async () => {
    const dir = freshDir()
    writeTree(dir, { 'sub/ok': 'x' })
    fs.writeFileSync(
      Buffer.concat([Buffer.from(`${dir}/sub/`), Buffer.from([0x6d, 0xff, 0xfe])]),
      'y'
    )
    const error = await rejection(treeSha256(dir))
    expect(error.message).toContain(
      `${path.join(dir, 'sub')}/m\\xff\\xfe: file name is not valid UTF-8`
    )
  })

  it('but accepts a name that holds U+FFFD itself (valid UTF-8)', async () => {
    const dir = freshDir()
    writeTree(dir, { 'a\uFFFDb': 'x' })
    expect((await treeSha256(dir)).manifest.map(entry => entry.path)).toEqual(['a\uFFFDb'])
  })

  it('a directory name that is not valid UTF-8', async () => {
    const dir = freshDir()
    const bad = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0xc3, 0x28])])
    fs.mkdirSync(bad)
    fs.writeFileSync(Buffer.concat([bad, Buffer.from('/f')]), 'x')
    expect((await rejection(treeSha256(dir))).message).toContain(
      '\\xc3(: file name is not valid UTF-8'
    )
  })

  it('an empty directory, or one holding only empty directories', async () => {
    const empty = freshDir()
    expect((await rejection(treeSha256(empty))).message).toContain(
      `${empty}: the tree has no regular files`
    )
    const hollow = freshDir()
    fs.mkdirSync(path.join(hollow, 'a/b/c'), { recursive: true })
    fs.mkdirSync(path.join(hollow, 'd'))
    expect((await rejection(treeSha256(hollow))).message).toContain('has no regular files')
  })

  it('a path that does not exist', async () => {
    const missing = path.join(scratch, 'nothing-here')
    expect((await rejection(treeSha256(missing))).message).toContain(`${missing}: cannot be read`)
  })

  it('an unreadable file or directory', async () => {
    const dir = freshDir()
    writeTree(dir, { 'ok/file': 'x', 'secret/file': 'y', locked: 'z' })
    fs.chmodSync(path.join(dir, 'locked'), 0o000)
    if (process.getuid?.() === 0) {
      // Root reads mode-000 files, so the same check runs as `nobody` in a child process: it
      // executes the hashing module of the engine (src/digest/hash-file.ts) on the locked file.
      fs.chmodSync(scratch, 0o755)
      fs.chmodSync(dir, 0o755)
      const hashFile = new URL('../../src/digest/hash-file.ts', import.meta.url).href
      const script = `import { createHasher } from ${JSON.stringify(hashFile)}
        const hasher = createHasher({ readSize: 1024, progress: new Float64Array(2), slot: 0 })
        const request = { paths: [process.argv[1]], names: ['locked'], meta: Float64Array.of(1, 0, 0) }
        try { hasher.hashBatch(request) }
        catch (failure) { process.stdout.write(failure.path + ': ' + failure.problem) }`
      const argv = ['--import', tsLoader, '--input-type=module', '-e', script]
      const output = execFileSync(process.execPath, [...argv, path.join(dir, 'locked')], {
        uid: 65534,
        gid: 65534,
        encoding: 'utf8'
      })
      expect(output).toBe(
        `${path.join(dir, 'locked')}: is not readable (EACCES): every file of a tree must be readable`
      )
    } else {
      const error = await rejection(treeSha256(dir))
      expect(error.message).toContain(`${path.join(dir, 'locked')}: is not readable (EACCES)`)
      fs.chmodSync(path.join(dir, 'locked'), 0o644)
      fs.chmodSync(path.join(dir, 'secret'), 0o000)
      expect((await rejection(treeSha256(dir))).message).toContain(
        'directory cannot be read (EACCES)'
      )
      fs.chmodSync(path.join(dir, 'secret'), 0o755)
    }
  })
})

describe('treeSha256 with worker threads', () => {
  it('hashes big files in parallel, reports progress and stops its threads', async () => {
    const dir = freshDir()
    const big = [Buffer.alloc(40 << 20, 7), Buffer.alloc(30 << 20, 8)]
    writeTree(dir, { 'big-1.bin': big[0], 'big-2.bin': big[1], 'small/a': 'a', 'small/b': '' })
    const progress: HashProgress[] = []
    const digest = await treeSha256(dir, {
      onProgress: p => progress.push(p),
      concurrency: 2,
      workers: testThreads
    })
    const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex')
    expect(digest.manifest).toEqual([
      { path: 'big-1.bin', size: big[0].length, sha256: sha256(big[0]) },
      { path: 'big-2.bin', size: big[1].length, sha256: sha256(big[1]) },
      { path: 'small/a', size: 1, sha256: sha256('a') },
      { path: 'small/b', size: 0, sha256: sha256('') }
    ])
    const bytesTotal = big[0].length + big[1].length + 1
    expect(progress.at(-1)).toEqual({
      bytesDone: bytesTotal,
      bytesTotal,
      filesDone: 4,
      filesTotal: 4
    })
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i].bytesDone).toBeGreaterThanOrEqual(progress[i - 1].bytesDone)
      expect(progress[i].filesTotal).toBe(4)
    }
  })
})

describe('manifest file', () => {
  it('writes one entry per line, and parses back to the digest', async () => {
    const dir = freshDir()
    writeTree(dir, { 'b/x': '1', a: '22' })
    const digest = await treeSha256(dir)
    const file = path.join(dir, '..', 'manifest.json')
    await writeManifest(file, digest)
    const text = fs.readFileSync(file, 'utf8')
    expect(JSON.parse(text)).toEqual(digest)
    expect(text).toBe(formatManifest(digest))
    expect(text.split('\n').filter(line => line.includes('"sha256"'))).toHaveLength(2)
  })
})
