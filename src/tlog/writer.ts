// A static tiled log on disk: init and append. An append writes every new tile under a new name
// (temp file + rename) and the signed checkpoint last, so a crash before that leaves the old log
// whole; appends are serialised by a lock file beside the checkpoint.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { invalid } from '../errors.js'
import { leafHash, rootOfLeafHashes } from '../digest/merkle.js'
import type { PrivateKey } from '../protocol/keys.js'
import { formatCheckpoint, parseCheckpoint, type Checkpoint } from './checkpoint.js'
import { MAX_ENTRY_BYTES } from './entry.js'
import {
  ED25519,
  formatNote,
  formatVerifierKey,
  parseNote,
  signEd25519,
  verifierKey,
  verifyEd25519
} from './note.js'
import { treeRoot } from './rfc6962.js'
import { directorySource, type LogSource } from './source.js'
import { TiledLog } from './tiled-log.js'
import {
  CHECKPOINT_FILE,
  encodeEntryBundle,
  entryBundlePath,
  hashTilePath,
  TILE_WIDTH
} from './tiles.js'
import { withLock, type LockOptions } from './lock.js'

export const LOCK_FILE = '.lock'

export interface AppendOptions extends LockOptions {
  /** Called between the steps of an append; a throw there is how tests crash it midway. */
  onStep?: (step: 'tiles-written' | 'checkpoint-written') => void
}

export interface AppendResult {
  /** Index of the first appended entry. */
  index: number
  treeSize: number
  root: string
  checkpoint: string
}

/** The log key's C2SP verifier key: its name is the log's origin. */
export function logVerifierKey(origin: string, key: PrivateKey): string {
  return formatVerifierKey(verifierKey(origin, ED25519, key.publicKey.raw))
}

export async function initLog(dir: string, origin: string, key: PrivateKey): Promise<string> {
  const vkey = logVerifierKey(origin, key)
  await mkdir(dir, { recursive: true })
  if (existsSync(path.join(dir, CHECKPOINT_FILE))) {
    throw invalid(`log ${dir}: already has a checkpoint; append to it or choose another --dir`)
  }
  const empty = { origin, treeSize: 0, root: rootOfLeafHashes([]), extensions: [] }
  await writeAtomically(dir, CHECKPOINT_FILE, signCheckpoint(empty, key))
  return vkey
}

export function signCheckpoint(checkpoint: Checkpoint, key: PrivateKey): string {
  const text = formatCheckpoint(checkpoint)
  const signature = signEd25519(text, checkpoint.origin, key.seed, key.publicKey.raw)
  return formatNote({ text, signatures: [signature] })
}

/** The log's current checkpoint, verified under the writer's own key. */
export async function readOwnCheckpoint(dir: string, key: PrivateKey): Promise<Checkpoint> {
  const source = directorySource(dir)
  const bytes = await source.read(CHECKPOINT_FILE)
  if (bytes === undefined) throw invalid(`log ${dir}: no checkpoint; run 'verify-model log init'`)
  const note = parseNote(bytes, `log ${dir} checkpoint`)
  const checkpoint = parseCheckpoint(note.text, `log ${dir} checkpoint`)
  const vkey = verifierKey(checkpoint.origin, ED25519, key.publicKey.raw)
  if (!verifyEd25519(note, vkey, `log ${dir} checkpoint`)) {
    throw invalid(
      `log ${dir}: its checkpoint is not signed by this --key (log key ${formatVerifierKey(vkey)})`
    )
  }
  return checkpoint
}

export async function appendEntries(
  dir: string,
  key: PrivateKey,
  entries: readonly Uint8Array[],
  options: AppendOptions = {}
): Promise<AppendResult> {
  for (const entry of entries) {
    if (entry.length > MAX_ENTRY_BYTES) {
      throw invalid(`log entry: ${entry.length} bytes exceeds ${MAX_ENTRY_BYTES}`)
    }
  }
  return withLock(
    path.join(dir, LOCK_FILE),
    async () => {
      const old = await readOwnCheckpoint(dir, key)
      const files = new TileOverlay(directorySource(dir))
      for (let i = 0; i < entries.length; i++) await files.add(old.treeSize + i, entries[i])
      const treeSize = old.treeSize + entries.length
      const root = await treeRoot(treeSize, new TiledLog(files, treeSize).node)
      for (const [file, bytes] of files.written) await writeAtomically(dir, file, bytes)
      options.onStep?.('tiles-written')
      const checkpoint = signCheckpoint({ ...old, treeSize, root }, key)
      await writeAtomically(dir, CHECKPOINT_FILE, checkpoint)
      options.onStep?.('checkpoint-written')
      // Partial tiles superseded by a full one go only now: readers of the old checkpoint fall
      // back to the full tile, whose prefix is what they need.
      for (const partials of files.completed) {
        await rm(path.join(dir, ...partials.split('/')), { recursive: true, force: true })
      }
      return { index: old.treeSize, treeSize, root, checkpoint }
    },
    options
  )
}

/** The tiles an append changes, kept in memory over the ones on disk until written. */
class TileOverlay implements LogSource {
  readonly location: string
  /** path → bytes, only the widest version of each tile. */
  readonly written = new Map<string, Uint8Array>()
  /** `.p` directories of tiles that became full. */
  readonly completed: string[] = []
  private readonly latest = new Map<string, { file: string; bytes: Uint8Array }>()

  constructor(private readonly disk: LogSource) {
    this.location = disk.location
  }

  async read(file: string): Promise<Uint8Array | undefined> {
    return this.written.get(file) ?? this.disk.read(file)
  }

  async close(): Promise<void> {}

  /** Entry `index` (the tree has `index` leaves before it). */
  async add(index: number, entry: Uint8Array): Promise<void> {
    await this.extend('entries', index, encodeEntryBundle([entry]), entryBundlePath)
    let hash = leafHash(entry)
    for (let level = 0, position = index; ; level++, position = Math.floor(position / TILE_WIDTH)) {
      const tile = await this.extend(`hash ${level}`, position, Buffer.from(hash, 'hex'), (n, w) =>
        hashTilePath(level, n, w)
      )
      if (tile === undefined) return
      hash = rootOfLeafHashes(splitHashes(tile))
    }
  }

  /** Appends an item at `position` of `kind`'s level; returns the tile when it became full. */
  private async extend(
    kind: string,
    position: number,
    item: Uint8Array,
    pathOf: (index: number, width: number) => string
  ): Promise<Uint8Array | undefined> {
    const index = Math.floor(position / TILE_WIDTH)
    const width = (position % TILE_WIDTH) + 1
    const key = `${kind}/${index}`
    let previous: Uint8Array = new Uint8Array()
    if (width > 1) {
      const known = this.latest.get(key)
      const before = known?.bytes ?? (await this.disk.read(pathOf(index, width - 1)))
      if (before === undefined) {
        throw invalid(`log ${this.location}: ${pathOf(index, width - 1)} is missing`)
      }
      previous = before
    }
    const bytes = new Uint8Array(Buffer.concat([previous, item]))
    const replaced = this.latest.get(key)
    if (replaced !== undefined) this.written.delete(replaced.file)
    const file = pathOf(index, width)
    this.latest.set(key, { file, bytes })
    this.written.set(file, bytes)
    if (width < TILE_WIDTH) return undefined
    this.completed.push(`${file}.p`)
    return bytes
  }
}

function splitHashes(tile: Uint8Array): string[] {
  const hashes: string[] = []
  for (let i = 0; i < tile.length; i += 32) {
    hashes.push(Buffer.from(tile.subarray(i, i + 32)).toString('hex'))
  }
  return hashes
}

/** Write beside, then rename: a reader (or a crash) sees the old file or the new, never half. */
export async function writeAtomically(dir: string, file: string, bytes: Uint8Array | string) {
  const target = path.join(dir, ...file.split('/'))
  await mkdir(path.dirname(target), { recursive: true })
  const temp = `${target}.tmp-${randomBytes(6).toString('hex')}`
  try {
    await writeFile(temp, bytes, { flag: 'wx' })
    await rename(temp, target)
  } finally {
    await rm(temp, { force: true })
  }
}
