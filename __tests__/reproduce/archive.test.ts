import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { VerifyError } from '../../src/errors.js'
import {
  detectArchiveFormat,
  unpackArchive,
  type UnpackLimits
} from '../../src/reproduce/archive.js'
import { tarArchive, zipArchive, type TarMember, type ZipMember } from '../helpers/archives.js'

let root: string
let archive: string
let target: string

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'archive-test-'))
  archive = path.join(root, 'data.bin')
  target = path.join(root, 'work', 'dataset')
  await mkdir(path.dirname(target))
})
afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

/** Every path under `dir`, files with their content, for comparing whole trees. */
async function listing(dir: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {}
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name)
    const relative = path.relative(dir, full)
    result[relative] = entry.isFile()
      ? await readFile(full, 'utf8')
      : entry.isDirectory()
        ? '<dir>'
        : '<other>'
  }
  return result
}

async function expectRejected(
  limits: Partial<UnpackLimits> | undefined,
  text: RegExp
): Promise<void> {
  const before = await listing(root)
  const error = await unpackArchive(archive, target, { label: 'dataset', limits }).then(
    () => undefined,
    (e: unknown) => e
  )
  expect(error).toBeInstanceOf(VerifyError)
  expect((error as VerifyError).verdict).toBe('invalid')
  expect((error as VerifyError).message).toMatch(text)
  // Nothing was written: not outside the target, and not inside it either.
  expect(await listing(root)).toEqual(before)
}

const good: TarMember[] = [
  { name: './', type: 'directory' },
  { name: './a.txt', content: 'alpha' },
  { name: './sub/', type: 'directory' },
  { name: './sub/run.sh', content: '#!/bin/sh\n', mode: 0o4775 },
  { name: 'deep/er/b.txt', content: 'beta' }
]
const goodListing = {
  'a.txt': 'alpha',
  sub: '<dir>',
  'sub/run.sh': '#!/bin/sh\n',
  deep: '<dir>',
  'deep/er': '<dir>',
  'deep/er/b.txt': 'beta'
}

describe('unpackArchive', () => {
  it('unpacks a tar, normalising ./, with modes 0644 or 0755 only whatever the umask', async () => {
    await writeFile(archive, await tarArchive(good))
    const umask = process.umask(0o077)
    const result = await unpackArchive(archive, target).finally(() => process.umask(umask))
    expect(result).toEqual({ format: 'tar', files: 3, bytes: 19 })
    expect(await listing(target)).toEqual(goodListing)
    expect((await stat(path.join(target, 'sub/run.sh'))).mode & 0o7777).toBe(0o755)
    expect((await stat(path.join(target, 'a.txt'))).mode & 0o7777).toBe(0o644)
    for (const dir of ['', 'sub', 'deep', 'deep/er']) {
      expect([dir, (await stat(path.join(target, dir))).mode & 0o7777]).toEqual([dir, 0o755])
    }
  })

  it('unpacks a tar.gz and a zip, detected by content whatever the file is called', async () => {
    await writeFile(archive, await tarArchive(good, { gzip: true }))
    expect(await detectArchiveFormat(archive)).toBe('tar.gz')
    expect((await unpackArchive(archive, target)).format).toBe('tar.gz')
    expect(await listing(target)).toEqual(goodListing)

    const zipTarget = path.join(root, 'zip-out')
    await writeFile(
      archive,
      zipArchive([
        { name: 'a.txt', content: 'alpha' },
        { name: 'sub/', unixMode: 0o040755 },
        { name: 'sub/run.sh', content: '#!/bin/sh\n', unixMode: 0o100755 },
        { name: 'deep/er/b.txt', content: 'beta' }
      ])
    )
    expect((await unpackArchive(archive, zipTarget)).format).toBe('zip')
    expect(await listing(zipTarget)).toEqual(goodListing)
    expect((await stat(path.join(zipTarget, 'sub/run.sh'))).mode & 0o777).toBe(0o755)
  })

  it('keeps a single top-level directory', async () => {
    await writeFile(archive, await tarArchive([{ name: 'data/x.txt', content: 'x' }]))
    await unpackArchive(archive, target)
    expect(await listing(target)).toEqual({ data: '<dir>', 'data/x.txt': 'x' })
  })

  it('rejects what is not tar, tar.gz or zip', async () => {
    await writeFile(archive, 'just some text, not an archive')
    await expectRejected(undefined, /unrecognised archive format/)
    await writeFile(archive, Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(100)]))
    await expectRejected(undefined, /corrupt or unsupported archive/)
  })

  describe('rejects hostile tar entries before writing anything', () => {
    const cases: [string, TarMember, RegExp][] = [
      [
        'a .. segment',
        { name: '../evil', content: 'x' },
        /"\.\.\/evil": '\.\.' segment not allowed/
      ],
      [
        'a nested .. segment',
        { name: 'ok/../../evil', content: 'x' },
        /'\.\.' segment not allowed/
      ],
      ['an absolute name', { name: '/tmp/evil', content: 'x' }, /"\/tmp\/evil": absolute path/],
      ['a backslash', { name: '..\\evil', content: 'x' }, /backslash in the name/],
      ['an empty segment', { name: 'a//evil', content: 'x' }, /empty path segment/],
      [
        'a symbolic link',
        { name: 'link', type: 'symlink', linkname: '/etc/passwd' },
        /"link": is a symbolic link/
      ],
      ['a hard link', { name: 'hard', type: 'link', linkname: 'a.txt' }, /"hard": is a hard link/],
      ['a character device', { name: 'null', type: 'character-device' }, /is a character device/],
      ['a block device', { name: 'sda', type: 'block-device' }, /is a block device/],
      ['a fifo', { name: 'pipe', type: 'fifo' }, /is a fifo/],
      ['a duplicate file', { name: './a.txt', content: 'again' }, /"\.\/a\.txt": appears twice/],
      ['a file under a file', { name: 'a.txt/x', content: 'x' }, /parent "a\.txt" is a file/]
    ]
    for (const [what, hostile, text] of cases) {
      it(what, async () => {
        await writeFile(archive, await tarArchive([{ name: 'a.txt', content: 'first' }, hostile]))
        await expectRejected(undefined, text)
        expect(await lstat(path.join(root, 'evil')).catch(() => 'absent')).toBe('absent')
      })
    }
  })

  it('rejects a name that is not valid UTF-8 and one with NUL', async () => {
    await writeFile(archive, zipArchive([{ name: 'a.txt' }, { name: 'bad-\uFFFD' }]))
    await expectRejected(undefined, /not valid UTF-8/)
    const withNul = zipArchive([{ name: 'a.txt\u0000evil' }])
    await writeFile(archive, withNul)
    await expectRejected(undefined, /NUL in the name/)
  })

  describe('rejects hostile zip entries before writing anything', () => {
    const cases: [string, ZipMember, RegExp][] = [
      ['a .. segment', { name: '../evil', content: 'x' }, /'\.\.' segment not allowed/],
      ['an absolute name', { name: '/evil', content: 'x' }, /absolute path/],
      ['a backslash', { name: '..\\evil', content: 'x' }, /backslash in the name/],
      [
        'a symbolic link',
        { name: 'link', content: '/etc/passwd', unixMode: 0o120777 },
        /is a symbolic link/
      ],
      ['a fifo', { name: 'pipe', unixMode: 0o010644 }, /is a fifo/],
      ['a duplicate file', { name: 'a.txt', content: 'again' }, /"a\.txt": appears twice/]
    ]
    for (const [what, hostile, text] of cases) {
      it(what, async () => {
        await writeFile(archive, zipArchive([{ name: 'a.txt', content: 'first' }, hostile]))
        await expectRejected(undefined, text)
      })
    }
  })

  it('caps the total unpacked size and the entry count', async () => {
    await writeFile(archive, await tarArchive(good))
    await expectRejected({ maxBytes: 18 }, /unpacks to more than 18 bytes/)
    await expectRejected({ maxEntries: 4 }, /more than 4 entries/)

    const bomb = zipArchive([{ name: 'zeros', content: Buffer.alloc(100_000) }])
    await writeFile(archive, bomb)
    await expectRejected({ maxBytes: 99_999 }, /unpacks to more than 99999 bytes/)
  })

  it('stops a gzip of endless zero blocks after the archive end', async () => {
    const tarball = await tarArchive(good)
    const padded = Buffer.concat([tarball, Buffer.alloc(8 * 2 ** 20)])
    await writeFile(archive, gzipSync(padded))
    await expectRejected({ maxBytes: 1000, maxEntries: 10 }, /the tar stream runs past \d+ bytes/)
    await writeFile(archive, gzipSync(Buffer.concat([tarball, Buffer.alloc(2 ** 19)])))
    await expect(
      unpackArchive(archive, target, { limits: { maxBytes: 1000, maxEntries: 10 } })
    ).resolves.toMatchObject({ files: 3 })
  })

  it('rejects a zip entry that lies about its size', async () => {
    await writeFile(
      archive,
      zipArchive([{ name: 'f', content: 'abcdef', declaredSize: 1_000_000 }])
    )
    await expectRejected(undefined, /corrupt or unsupported archive: .*size mismatch/)
  })

  it('stops a deflated entry that inflates beyond its declared size, and removes what was written', async () => {
    const bomb = zipArchive([
      { name: 'a.txt', content: 'first' },
      { name: 'zeros', content: Buffer.alloc(1_000_000), deflate: true, declaredSize: 1000 }
    ])
    await writeFile(archive, bomb)
    await expectRejected({ maxBytes: 10_000 }, /corrupt or unsupported archive: too many bytes/)
  })
})
