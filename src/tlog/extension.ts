// Is the log's latest checkpoint an extension of one seen before? Recomputed from the tiles.
import { invalid, VerifyError } from '../errors.js'
import type { Checkpoint } from './checkpoint.js'
import { consistencyProof, verifyConsistency } from './rfc6962.js'
import type { TiledLog } from './tiled-log.js'

/** Throws invalid, naming the split view, unless `latest` (read through `log`) extends `seen`. */
export async function checkExtension(
  seen: Checkpoint,
  latest: Checkpoint,
  log: TiledLog
): Promise<void> {
  const split = (why: string): never => {
    throw invalid(
      `split view: the log's checkpoint (size ${latest.treeSize}, root ${latest.root}) is not an extension of the one seen before (size ${seen.treeSize}, root ${seen.root}): ${why}`
    )
  }
  if (seen.origin !== latest.origin) {
    throw invalid(`the log's origin is '${latest.origin}', the one seen before '${seen.origin}'`)
  }
  if (latest.treeSize < seen.treeSize) split('the tree is smaller')
  if (latest.treeSize === seen.treeSize) {
    if (latest.root !== seen.root) split('same size, another root')
    return
  }
  const proof = await consistencyProof(seen.treeSize, latest.treeSize, log.node)
  try {
    verifyConsistency(seen.treeSize, latest.treeSize, seen.root, latest.root, proof)
  } catch (error) {
    if (error instanceof VerifyError)
      split(`its tiles do not contain the old tree (${error.message})`)
    throw error
  }
}
