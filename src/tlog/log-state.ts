// The latest checkpoint of a log, read and verified, and the tiles behind it.
import { invalid } from '../errors.js'
import type { Checkpoint } from './checkpoint.js'
import { treeRoot } from './rfc6962.js'
import type { LogSource } from './source.js'
import { TiledLog } from './tiled-log.js'
import { verifyCheckpointNote } from './verify.js'
import { CHECKPOINT_FILE } from './tiles.js'

export interface LatestCheckpoint {
  /** The note as served, signature lines included. */
  note: string
  checkpoint: Checkpoint
  log: TiledLog
}

/** The served checkpoint under the log key, and tiles that really give its root. */
export async function readLatest(source: LogSource, logKey: string): Promise<LatestCheckpoint> {
  const bytes = await source.read(CHECKPOINT_FILE)
  if (bytes === undefined) throw invalid(`log ${source.location}: no checkpoint file`)
  const note = Buffer.from(bytes).toString('utf8')
  const policy = { logKey, witnessKeys: [], witnessThreshold: 0 }
  const { checkpoint } = verifyCheckpointNote(bytes, policy, `log ${source.location} checkpoint`)
  const log = new TiledLog(source, checkpoint.treeSize)
  await checkTilesGiveRoot(log, checkpoint)
  return { note, checkpoint, log }
}

export async function checkTilesGiveRoot(log: TiledLog, checkpoint: Checkpoint): Promise<void> {
  const root = await treeRoot(checkpoint.treeSize, log.node)
  if (root !== checkpoint.root) {
    throw invalid(
      `log ${log.source.location}: its tiles give root ${root} for size ${checkpoint.treeSize}, the checkpoint says ${checkpoint.root}`
    )
  }
}
