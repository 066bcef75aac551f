import type { HashProgress } from '../digest/types.js'
import { formatBytes } from '../reproduce/limits.js'

/**
 * The hashing progress lines a person wants: nothing for a tree hashed in under `intervalMs`,
 * else one line every `intervalMs` and a final one with the time taken. Returns the line to
 * print for a progress event, or undefined.
 */
export function hashProgressLines(
  intervalMs: number,
  now: () => number = Date.now
): (what: string, progress: HashProgress) => string | undefined {
  const trees = new Map<string, { started: number; printed?: number }>()
  return (what, progress) => {
    const time = now()
    const state = trees.get(what) ?? { started: time }
    trees.set(what, state)
    const finished =
      progress.filesDone >= progress.filesTotal && progress.bytesDone >= progress.bytesTotal
    if (finished) trees.delete(what)
    const due = time - (state.printed ?? state.started) >= intervalMs
    if (!(finished ? state.printed !== undefined : due)) return undefined
    state.printed = time
    const done = `${formatBytes(progress.bytesDone)} of ${formatBytes(progress.bytesTotal)}`
    const took = finished ? ` in ${((time - state.started) / 1000).toFixed(1)} s` : ''
    return `hashing ${what}: ${done}${took}`
  }
}
