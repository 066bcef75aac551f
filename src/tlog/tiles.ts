// C2SP tlog-tiles: where each piece of a tiled log lives, and the entry-bundle encoding.
import { invalid } from '../errors.js'

/** Tile height 8: a full tile holds 256 hashes (or entries). */
export const TILE_HEIGHT = 8
export const TILE_WIDTH = 1 << TILE_HEIGHT
export const HASH_BYTES = 32

/** The signed checkpoint, at the log's root. */
export const CHECKPOINT_FILE = 'checkpoint'

/** `N` as 3-digit groups, all but the last prefixed with 'x': 1234067 → x001/x234/067. */
export function tileIndexPath(index: number): string {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`tile index ${index}`)
  const groups: string[] = []
  let rest = index
  do {
    groups.unshift(String(rest % 1000).padStart(3, '0'))
    rest = Math.floor(rest / 1000)
  } while (rest > 0)
  return groups.map((group, i) => (i < groups.length - 1 ? `x${group}` : group)).join('/')
}

function widthSuffix(width: number): string {
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) {
    throw new RangeError(`tile width ${width}`)
  }
  return width === TILE_WIDTH ? '' : `.p/${width}`
}

/** `tile/<L>/<N>[.p/<W>]`. */
export function hashTilePath(level: number, index: number, width: number): string {
  return `tile/${level}/${tileIndexPath(index)}${widthSuffix(width)}`
}

/** `tile/entries/<N>[.p/<W>]`. */
export function entryBundlePath(index: number, width: number): string {
  return `tile/entries/${tileIndexPath(index)}${widthSuffix(width)}`
}

/**
 * The width of tile `index` at `level` in a tree of `treeSize` leaves (0: no such tile). Level L
 * holds the hashes of the complete subtrees of 256^L leaves.
 */
export function tileWidth(level: number, index: number, treeSize: number): number {
  const hashes = Math.floor(treeSize / TILE_WIDTH ** level)
  return Math.max(0, Math.min(TILE_WIDTH, hashes - index * TILE_WIDTH))
}

/** Each entry as a big-endian u16 length and its bytes. */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = []
  for (const entry of entries) {
    if (entry.length > 0xffff) throw invalid(`log entry of ${entry.length} bytes exceeds 65535`)
    const length = Buffer.alloc(2)
    length.writeUInt16BE(entry.length)
    parts.push(length, entry)
  }
  return new Uint8Array(Buffer.concat(parts))
}

export function decodeEntryBundle(bytes: Uint8Array, field: string): Uint8Array[] {
  const entries: Uint8Array[] = []
  let offset = 0
  while (offset < bytes.length) {
    if (offset + 2 > bytes.length) throw invalid(`${field}: truncated length at byte ${offset}`)
    const length = (bytes[offset] << 8) | bytes[offset + 1]
    const end = offset + 2 + length
    if (end > bytes.length) throw invalid(`${field}: entry at byte ${offset} is truncated`)
    entries.push(bytes.subarray(offset + 2, end))
    offset = end
  }
  return entries
}
