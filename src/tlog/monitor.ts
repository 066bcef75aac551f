// A key holder's monitor: every entry since the last seen checkpoint that names one of its keys.
import { parseEntry } from './entry.js'
import { checkExtension } from './extension.js'
import { readLatest } from './log-state.js'
import { toHex } from '../protocol/encoding.js'
import type { LogSource } from './source.js'
import { TILE_WIDTH } from './tiles.js'
import { verifyCheckpointNote } from './verify.js'

export interface MonitoredEntry {
  index: number
  attestationDigest: string
  keys: string[]
  /** Listed as published by the key holder. */
  known: boolean
}

export interface MonitorReport {
  origin: string
  fromSize: number
  treeSize: number
  root: string
  /** The checkpoint note read: the next state. */
  checkpoint: string
  entries: MonitoredEntry[]
  /** Entries that are not log entries of this project (never naming a key). */
  malformed: number[]
  unknown: number
}

export async function monitorLog(
  source: LogSource,
  logKey: string,
  keys: readonly Uint8Array[],
  known: ReadonlySet<string>,
  previous: string | undefined
): Promise<MonitorReport> {
  const latest = await readLatest(source, logKey)
  let fromSize = 0
  if (previous !== undefined) {
    const policy = { logKey, witnessKeys: [], witnessThreshold: 0 }
    const seen = verifyCheckpointNote(previous, policy, 'monitor state checkpoint').checkpoint
    await checkExtension(seen, latest.checkpoint, latest.log)
    fromSize = seen.treeSize
  }
  const watched = new Set(keys.map(key => toHex(key)))
  const entries: MonitoredEntry[] = []
  const malformed: number[] = []
  const size = latest.checkpoint.treeSize
  for (let tile = Math.floor(fromSize / TILE_WIDTH); tile * TILE_WIDTH < size; tile++) {
    const bundle = await latest.log.entryBundle(tile)
    bundle.forEach((bytes, offset) => {
      const index = tile * TILE_WIDTH + offset
      if (index < fromSize) return
      let entry
      try {
        entry = parseEntry(bytes)
      } catch {
        malformed.push(index)
        return
      }
      if (!entry.keys.some(key => watched.has(key))) return
      const digest = entry.attestationDigest
      entries.push({ index, attestationDigest: digest, keys: entry.keys, known: known.has(digest) })
    })
  }
  return {
    origin: latest.checkpoint.origin,
    fromSize,
    treeSize: size,
    root: latest.checkpoint.root,
    checkpoint: latest.note,
    entries,
    malformed,
    unknown: entries.filter(e => !e.known).length
  }
}
