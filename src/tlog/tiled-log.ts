// Reads a static tiled log of a given size: hash tiles, entry bundles, and any subtree hash.
import { invalid, unverifiable } from '../errors.js'
import { leafHash, rootOfLeafHashes } from '../digest/merkle.js'
import { toHex } from '../protocol/encoding.js'
import { type NodeReader } from './rfc6962.js'
import type { LogSource } from './source.js'
import {
  decodeEntryBundle,
  entryBundlePath,
  HASH_BYTES,
  hashTilePath,
  TILE_HEIGHT,
  TILE_WIDTH,
  tileWidth
} from './tiles.js'

export class TiledLog {
  private readonly tiles = new Map<string, string[]>()

  constructor(
    readonly source: LogSource,
    readonly treeSize: number
  ) {}

  /** The hashes of tile `index` at `level` (hex), as wide as the tree makes it. */
  async hashTile(level: number, index: number): Promise<string[]> {
    const key = `${level}/${index}`
    const cached = this.tiles.get(key)
    if (cached !== undefined) return cached
    const width = tileWidth(level, index, this.treeSize)
    const bytes = await this.readWithFallback(hashTilePath, level, index, width)
    const data = bytes.subarray(0, width * HASH_BYTES)
    if (data.length !== width * HASH_BYTES) {
      throw invalid(
        `log ${this.source.location}: ${hashTilePath(level, index, width)} is ${bytes.length} bytes, expected ${width * HASH_BYTES}`
      )
    }
    const hashes: string[] = []
    for (let i = 0; i < width; i++) hashes.push(toHex(data.subarray(i * 32, i * 32 + 32)))
    this.tiles.set(key, hashes)
    return hashes
  }

  /** The entries of bundle `index`, each checked against its leaf hash in the level-0 tile. */
  async entryBundle(index: number): Promise<Uint8Array[]> {
    const width = tileWidth(0, index, this.treeSize)
    const file = entryBundlePath(index, width)
    const bytes = await this.readWithFallback((_, n, w) => entryBundlePath(n, w), 0, index, width)
    const entries = decodeEntryBundle(bytes, `log ${this.source.location}: ${file}`)
    if (entries.length < width || (entries.length > width && width === TILE_WIDTH)) {
      throw invalid(
        `log ${this.source.location}: ${file} holds ${entries.length} entries, expected ${width}`
      )
    }
    const leaves = await this.hashTile(0, index)
    const mine = entries.slice(0, width)
    mine.forEach((entry, i) => {
      if (leafHash(entry) !== leaves[i]) {
        throw invalid(
          `log ${this.source.location}: entry ${index * TILE_WIDTH + i} does not hash to its leaf in the tiles`
        )
      }
    })
    return mine
  }

  readonly node: NodeReader = async (level, index) => {
    const tileLevel = Math.floor(level / TILE_HEIGHT)
    const span = 2 ** (level % TILE_HEIGHT)
    const start = index * span
    const tile = Math.floor(start / TILE_WIDTH)
    const offset = start % TILE_WIDTH
    const hashes = await this.hashTile(tileLevel, tile)
    if (offset + span > hashes.length) {
      throw new RangeError(`node ${level}/${index} is not complete in a tree of ${this.treeSize}`)
    }
    return rootOfLeafHashes(hashes.slice(offset, offset + span))
  }

  /**
   * A partial tile may be gone once the tree grew: C2SP lets a log delete it when the full
   * tile exists, whose first `width` items are the same.
   */
  private async readWithFallback(
    pathOf: (level: number, index: number, width: number) => string,
    level: number,
    index: number,
    width: number
  ): Promise<Uint8Array> {
    if (width === 0) throw new RangeError(`no tile ${level}/${index} in a tree of ${this.treeSize}`)
    const bytes =
      (await this.source.read(pathOf(level, index, width))) ??
      (width < TILE_WIDTH ? await this.source.read(pathOf(level, index, TILE_WIDTH)) : undefined)
    if (bytes === undefined) {
      throw unverifiable(
        `log ${this.source.location}: ${pathOf(level, index, width)} is missing (tree size ${this.treeSize})`
      )
    }
    return bytes
  }
}
