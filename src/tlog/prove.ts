// The .tlog-proof of an entry in a served log, against its current checkpoint.
import { invalid } from '../errors.js'
import { leafHash } from '../digest/merkle.js'
import { parseCheckpoint } from './checkpoint.js'
import { parseNote } from './note.js'
import { formatProof } from './proof.js'
import { inclusionProof } from './rfc6962.js'
import { checkTilesGiveRoot } from './log-state.js'
import type { LogSource } from './source.js'
import { TiledLog } from './tiled-log.js'
import { CHECKPOINT_FILE, TILE_WIDTH } from './tiles.js'

export interface EntryProof {
  proof: string
  index: number
  treeSize: number
}

/** Finds the entry (its first occurrence) and proves it under the checkpoint as served. */
export async function proveEntry(source: LogSource, entry: Uint8Array): Promise<EntryProof> {
  const bytes = await source.read(CHECKPOINT_FILE)
  if (bytes === undefined) throw invalid(`log ${source.location}: no checkpoint file`)
  const note = parseNote(bytes, `log ${source.location} checkpoint`)
  const checkpoint = parseCheckpoint(note.text, `log ${source.location} checkpoint`)
  const log = new TiledLog(source, checkpoint.treeSize)
  await checkTilesGiveRoot(log, checkpoint)
  const leaf = leafHash(entry)
  for (let tile = 0; tile * TILE_WIDTH < checkpoint.treeSize; tile++) {
    const offset = (await log.hashTile(0, tile)).indexOf(leaf)
    if (offset === -1) continue
    const index = tile * TILE_WIDTH + offset
    const hashes = await inclusionProof(index, checkpoint.treeSize, log.node)
    const text = Buffer.from(bytes).toString('utf8')
    return {
      proof: formatProof({ extra: entry, index, hashes, checkpoint: text }),
      index,
      treeSize: checkpoint.treeSize
    }
  }
  throw invalid(
    `log ${source.location}: this SBA's entry is not among its ${checkpoint.treeSize} entries; append it with 'verify-model log append'`
  )
}
