// Safe unpacking of dataset archives (tar, tar.gz, zip). Only regular files and directories are
// accepted; every entry name is checked before anything is written, and the whole archive is
// checked in a first pass that writes nothing, so a hostile archive leaves no file anywhere.
import { createReadStream } from 'node:fs'
import { chmod, constants, mkdir, open, readdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { Transform, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import tar from 'tar-stream'
import yauzl from 'yauzl'
import { invalid, unverifiable, VerifyError } from '../errors.js'

export type ArchiveFormat = 'tar' | 'tar.gz' | 'zip'

export interface UnpackLimits {
  /** Sum of the entries' sizes. */
  maxBytes: number
  maxEntries: number
}

const DEFAULT_UNPACK_LIMITS: UnpackLimits = { maxBytes: 64 * 2 ** 30, maxEntries: 1_000_000 }

export interface UnpackOptions {
  /** Prefix of every error message, naming what the archive is (e.g. `predicate.dataset.uri`). */
  label?: string
  limits?: Partial<UnpackLimits>
}

export interface UnpackResult {
  format: ArchiveFormat
  files: number
  bytes: number
}

/** An archive member as the container format describes it, before any check. */
interface RawEntry {
  name: string
  /** `file`, `directory`, or what else it is, in words (`symbolic link`, …). */
  type: string
  size: number
  mode: number
  open(): Promise<AsyncIterable<Buffer>>
}

/** An entry that passed the checks: a normalised relative path and what to write there. */
interface PlannedEntry {
  path: string
  kind: 'file' | 'directory'
  size: number
  mode: 0o644 | 0o755
}

/** Detects the format from the first bytes, never from a file name. */
export async function detectArchiveFormat(file: string, label = 'archive'): Promise<ArchiveFormat> {
  const handle = await open(file, 'r')
  const head = Buffer.alloc(512)
  try {
    await handle.read(head, 0, head.length, 0)
  } finally {
    await handle.close()
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz'
  const zipSignature = head.readUInt32LE(0)
  if (zipSignature === 0x04034b50 || zipSignature === 0x06054b50) return 'zip'
  if (head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar'
  throw invalid(`${label}: unrecognised archive format (tar, tar.gz or zip expected, by content)`)
}

/**
 * Unpacks `file` into `target` (created; must be absent or empty). The archive's layout is kept
 * as it is: a single top-level directory is not stripped.
 */
export async function unpackArchive(
  file: string,
  target: string,
  options: UnpackOptions = {}
): Promise<UnpackResult> {
  const label = options.label ?? 'archive'
  const limits = { ...DEFAULT_UNPACK_LIMITS, ...options.limits }
  const format = await detectArchiveFormat(file, label)

  const dryRun = new EntryPlan(label, limits)
  await forEachEntry(file, format, { label, limits }, async raw => {
    dryRun.add(raw)
  })

  await mkdir(target, { recursive: true })
  if ((await readdir(target)).length > 0) throw new Error(`unpack target ${target} is not empty`)
  const plan = new EntryPlan(label, limits)
  try {
    await forEachEntry(file, format, { label, limits }, async raw => {
      const entry = plan.add(raw)
      if (entry) await writeEntry(target, entry, raw, label)
    })
    // Readable by the build's uid whatever the umask, like the files (0644/0755).
    for (const directory of ['', ...plan.directories]) {
      await chmod(path.join(target, directory), 0o755)
    }
  } catch (error) {
    await rm(target, { recursive: true, force: true })
    throw error
  }
  return { format, files: plan.files.size, bytes: plan.bytes }
}

/** The checks, applied to entries in archive order; keeps what is needed to spot duplicates and caps. */
class EntryPlan {
  readonly files = new Set<string>()
  readonly directories = new Set<string>()
  bytes = 0
  private entries = 0

  constructor(
    private readonly label: string,
    private readonly limits: UnpackLimits
  ) {}

  /** Returns what to write, or undefined for the archive's root directory itself (`./`). */
  add(raw: RawEntry): PlannedEntry | undefined {
    const fail = (reason: string) =>
      invalid(`${this.label}: entry ${JSON.stringify(raw.name)}: ${reason}`)
    if (++this.entries > this.limits.maxEntries) {
      throw invalid(`${this.label}: more than ${this.limits.maxEntries} entries (the limit)`)
    }
    if (raw.type !== 'file' && raw.type !== 'directory') {
      throw fail(`is a ${raw.type}; only regular files and directories are allowed`)
    }
    const kind = raw.type
    const entryPath = normaliseName(raw.name, kind, fail)
    if (entryPath === '') {
      if (kind === 'file') throw fail('a file must have a name')
      return undefined
    }
    const segments = entryPath.split('/')
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join('/')
      if (this.files.has(parent)) throw fail(`its parent ${JSON.stringify(parent)} is a file`)
    }
    if (this.files.has(entryPath)) throw fail('appears twice')
    if (kind === 'file' && this.directories.has(entryPath)) throw fail('is also a directory')

    for (let i = 1; i < segments.length; i++) this.directories.add(segments.slice(0, i).join('/'))
    if (kind === 'directory') {
      this.directories.add(entryPath)
      return { path: entryPath, kind, size: 0, mode: 0o755 }
    }
    this.files.add(entryPath)
    this.bytes += raw.size
    if (this.bytes > this.limits.maxBytes) {
      throw invalid(`${this.label}: unpacks to more than ${this.limits.maxBytes} bytes (the limit)`)
    }
    return { path: entryPath, kind, size: raw.size, mode: raw.mode & 0o111 ? 0o755 : 0o644 }
  }
}

/**
 * A relative, `/`-separated path with `.` segments and a directory's trailing `/` removed, so
 * `./a/b` and `a/b` are the same entry (archives made with `tar -C DIR .` start with `./`).
 */
function normaliseName(
  name: string,
  kind: 'file' | 'directory',
  fail: (reason: string) => VerifyError
): string {
  if (name.includes('\0')) throw fail('NUL in the name')
  if (name.includes('\\')) throw fail('backslash in the name')
  if (name.includes('\uFFFD')) throw fail('the name is not valid UTF-8')
  if (name.startsWith('/')) throw fail('absolute path')
  const segments = name.split('/')
  if (kind === 'directory' && segments.length > 1 && segments.at(-1) === '') segments.pop()
  const kept: string[] = []
  for (const segment of segments) {
    if (segment === '..') throw fail("'..' segment not allowed")
    if (segment === '') throw fail('empty path segment')
    if (segment !== '.') kept.push(segment)
  }
  return kept.join('/')
}

async function writeEntry(
  target: string,
  entry: PlannedEntry,
  raw: RawEntry,
  label: string
): Promise<void> {
  const destination = path.join(target, ...entry.path.split('/'))
  if (entry.kind === 'directory') {
    await mkdir(destination, { recursive: true, mode: 0o755 })
    return
  }
  const body = await raw.open()
  await mkdir(path.dirname(destination), { recursive: true, mode: 0o755 })
  // O_EXCL: an entry never replaces anything, whatever the checks above let through.
  const handle = await open(
    destination,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    entry.mode
  )
  let written = 0
  try {
    // The readers end an entry at its declared size (tar) or fail past it (yauzl validates sizes).
    for await (const chunk of body) {
      written += chunk.length
      await handle.write(chunk)
    }
    await handle.chmod(entry.mode)
  } finally {
    await handle.close()
  }
  if (written !== entry.size) {
    throw invalid(
      `${label}: entry ${JSON.stringify(raw.name)}: holds ${written > entry.size ? 'more' : 'fewer'} bytes than its declared ${entry.size}`
    )
  }
}

/** Calls `visit` for every entry in archive order; library errors become `invalid` (a corrupt archive). */
async function forEachEntry(
  file: string,
  format: ArchiveFormat,
  { label, limits }: { label: string; limits: UnpackLimits },
  visit: (entry: RawEntry) => Promise<void>
): Promise<void> {
  try {
    if (format === 'zip') await forEachZipEntry(file, visit)
    else await forEachTarEntry(file, format === 'tar.gz', tarStreamCap(limits, label), visit)
  } catch (error) {
    if (error instanceof VerifyError) throw error
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EIO') {
      throw unverifiable(`${label}: cannot unpack: ${(error as Error).message}`)
    }
    throw invalid(`${label}: corrupt or unsupported archive: ${(error as Error).message}`)
  }
}

const TAR_TYPES: Record<string, string> = {
  file: 'file',
  directory: 'directory',
  link: 'hard link',
  symlink: 'symbolic link',
  'character-device': 'character device',
  'block-device': 'block device',
  fifo: 'fifo',
  'contiguous-file': 'contiguous file'
}

/**
 * Bounds the tar stream itself. Beyond its files' data a tar holds only headers and padding, so
 * a stream much longer than the limits allow (a small gzip of endless zero blocks, which the tar
 * reader would skip for hours) is cut off.
 */
function tarStreamCap(limits: UnpackLimits, label: string): Transform {
  const cap = limits.maxBytes + limits.maxEntries * 4096 + 2 ** 20
  let seen = 0
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length
      if (seen <= cap) done(null, chunk)
      else
        done(invalid(`${label}: the tar stream runs past ${cap} bytes, more than the limits allow`))
    }
  })
}

async function forEachTarEntry(
  file: string,
  gzipped: boolean,
  cap: Transform,
  visit: (entry: RawEntry) => Promise<void>
): Promise<void> {
  const extract = tar.extract()
  // streamx streams work in node's pipeline; only their typings differ.
  const sink = extract as unknown as NodeJS.WritableStream
  const input = createReadStream(file)
  const piped = gzipped ? pipeline(input, createGunzip(), cap, sink) : pipeline(input, cap, sink)
  // The iteration below reports the error; the pipeline's rejection must not go unhandled.
  piped.catch(() => {})
  try {
    for await (const member of extract) {
      const { header } = member
      await visit({
        name: header.name,
        type: TAR_TYPES[header.type ?? ''] ?? `tar entry of type ${String(header.type)}`,
        size: header.size ?? 0,
        mode: header.mode ?? 0,
        open: async () => member as unknown as AsyncIterable<Buffer>
      })
      member.resume()
    }
  } finally {
    extract.destroy()
  }
  await piped
}

const UNIX_FILE_TYPES: Record<number, string> = {
  0o100000: 'file',
  0o040000: 'directory',
  0o120000: 'symbolic link',
  0o020000: 'character device',
  0o060000: 'block device',
  0o010000: 'fifo',
  0o140000: 'socket'
}
const MADE_BY_UNIX = 3
const DOS_DIRECTORY = 0x10
const utf8 = new TextDecoder('utf-8', { fatal: true })

async function forEachZipEntry(
  file: string,
  visit: (entry: RawEntry) => Promise<void>
): Promise<void> {
  const zip = await yauzl.openPromise(file, {
    lazyEntries: true,
    autoClose: false,
    decodeStrings: false,
    validateEntrySizes: true
  })
  try {
    for await (const entry of zip.eachEntry()) {
      const unixMode =
        entry.versionMadeBy >>> 8 === MADE_BY_UNIX ? entry.externalFileAttributes >>> 16 : 0
      const name = decodeZipName(entry.fileNameRaw)
      let type = UNIX_FILE_TYPES[unixMode & 0o170000]
      if (type === undefined) {
        const directory = name.endsWith('/') || (entry.externalFileAttributes & DOS_DIRECTORY) !== 0
        type = unixMode & 0o170000 ? 'special file' : directory ? 'directory' : 'file'
      }
      if (type === 'file' && entry.isEncrypted()) type = 'encrypted file'
      else if (type === 'file' && !entry.canDecodeFileData()) {
        type = `file compressed with unsupported method ${entry.compressionMethod}`
      }
      await visit({
        name,
        type,
        size: entry.uncompressedSize,
        mode: unixMode,
        open: async () => {
          const stream: Readable = await zip.openReadStreamPromise(entry)
          // The reader reports the first error; yauzl can emit more once it has stopped listening.
          stream.on('error', () => {})
          return stream
        }
      })
    }
  } finally {
    zip.close()
  }
}

/** Zip names are taken as their raw bytes, which must be UTF-8 (docs/protocol.md section 1). */
function decodeZipName(raw: Buffer): string {
  try {
    return utf8.decode(raw)
  } catch {
    return raw.toString('utf8') // carries U+FFFD, which the name check rejects
  }
}
