import type { FileHandle } from 'node:fs/promises'

/** The outcome of parsing an untrusted header: never an exception, always a reason. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string }

export type ElementKind = 'float' | 'bfloat' | 'int' | 'uint' | 'bool'

export interface ElementType {
  kind: ElementKind
  /** Bytes per element: 1, 2, 4 or 8. */
  size: number
  littleEndian: boolean
}

/** Where a tensor's data starts in an open file. */
export interface TensorData {
  handle: FileHandle
  offset: number
}

export interface TensorLayout {
  type: ElementType
  shape: readonly number[]
  /** Column-major storage (NPY `fortran_order`). */
  fortranOrder: boolean
}

export interface ElementIndex {
  /** Row-major (C order) flat index, as `numpy.ravel_multi_index` gives it. */
  flat: number
  /** One coordinate per axis. */
  index: number[]
}

export interface ElementStats {
  elements: number
  /** Fewer than `elements` when the byte budget ran out. */
  compared: number
  /** Elements whose bytes differ (so `-0` vs `0` and two different NaNs count). */
  differing: number
  /** Differing elements where either side is NaN: left out of `maxAbsDiff`. */
  nanDiffering: number
  /** Largest absolute difference over the differing non-NaN elements; null when there are none. */
  maxAbsDiff: number | null
  /**
   * Largest |value| of either side over the differing non-NaN floating-point elements: the
   * scale the differences are relative to. Null for integer tensors or no such element.
   */
  maxAbsValue: number | null
  /** The first differing element in storage order. */
  firstDifferent: ElementIndex | null
}

/** Read budget shared by the comparisons of one file pair: bytes read from each side. */
export interface ByteBudget {
  remaining: number
}

const CHUNK_BYTES = 1 << 20

export function float16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exponent = (bits >> 10) & 0x1f
  const fraction = bits & 0x3ff
  if (exponent === 0) return sign * fraction * 2 ** -24
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15)
}

const bfloat16Scratch = new DataView(new ArrayBuffer(4))

/** bfloat16 is the upper half of a float32. */
export function bfloat16ToNumber(bits: number): number {
  bfloat16Scratch.setUint32(0, ((bits & 0xffff) << 16) >>> 0)
  return bfloat16Scratch.getFloat32(0)
}

export function readElement(view: DataView, offset: number, type: ElementType): number | bigint {
  const le = type.littleEndian
  switch (type.kind) {
    case 'float':
      if (type.size === 2) return float16ToNumber(view.getUint16(offset, le))
      return type.size === 4 ? view.getFloat32(offset, le) : view.getFloat64(offset, le)
    case 'bfloat':
      return bfloat16ToNumber(view.getUint16(offset, le))
    case 'int':
      if (type.size === 1) return view.getInt8(offset)
      if (type.size === 2) return view.getInt16(offset, le)
      return type.size === 4 ? view.getInt32(offset, le) : view.getBigInt64(offset, le)
    case 'uint':
    case 'bool':
      if (type.size === 1) return view.getUint8(offset)
      if (type.size === 2) return view.getUint16(offset, le)
      return type.size === 4 ? view.getUint32(offset, le) : view.getBigUint64(offset, le)
  }
}

/** Coordinates of the element at `position` in storage order. */
export function unravelIndex(
  position: number,
  shape: readonly number[],
  fortranOrder: boolean
): number[] {
  const index = new Array<number>(shape.length).fill(0)
  let rest = position
  for (let step = 0; step < shape.length; step++) {
    const axis = fortranOrder ? step : shape.length - 1 - step
    index[axis] = rest % shape[axis]
    rest = Math.floor(rest / shape[axis])
  }
  return index
}

export function ravelIndex(index: readonly number[], shape: readonly number[]): number {
  return index.reduce((flat, coordinate, axis) => flat * shape[axis] + coordinate, 0)
}

/** Product of the dimensions, or null when it exceeds `limit` (so a hostile shape cannot overflow). */
export function elementCount(shape: readonly number[], limit: number): number | null {
  if (shape.includes(0)) return 0
  let count = 1
  for (const dimension of shape) {
    count *= dimension
    if (count > limit) return null
  }
  return count
}

/**
 * Yields the same byte range of two files in aligned chunks, stopping when the budget runs out.
 * The yielded buffers are reused: consume them before asking for the next chunk.
 */
async function* pairedChunks(
  expected: TensorData,
  actual: TensorData,
  length: number,
  budget: ByteBudget
): AsyncGenerator<{ position: number; expected: Buffer; actual: Buffer }> {
  const size = Math.min(CHUNK_BYTES, length)
  const bufferA = Buffer.allocUnsafe(size)
  const bufferB = Buffer.allocUnsafe(size)
  for (let position = 0; position < length; position += size) {
    const wanted = Math.min(size, length - position, budget.remaining)
    if (wanted <= 0) return
    budget.remaining -= wanted
    await readFully(expected.handle, bufferA, wanted, expected.offset + position)
    await readFully(actual.handle, bufferB, wanted, actual.offset + position)
    yield { position, expected: bufferA.subarray(0, wanted), actual: bufferB.subarray(0, wanted) }
  }
}

async function readFully(
  handle: FileHandle,
  buffer: Buffer,
  length: number,
  position: number
): Promise<void> {
  let done = 0
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done)
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${position + done}`)
    done += bytesRead
  }
}

/** The first offset where two byte ranges differ, or null if none within the budget. */
export async function firstDifferentByte(
  expected: TensorData,
  actual: TensorData,
  length: number,
  budget: ByteBudget
): Promise<{ offset: number | null; compared: number }> {
  let compared = 0
  for await (const chunk of pairedChunks(expected, actual, length, budget)) {
    if (!chunk.expected.equals(chunk.actual)) {
      let i = 0
      while (chunk.expected[i] === chunk.actual[i]) i++
      return { offset: chunk.position + i, compared: compared + i + 1 }
    }
    compared += chunk.expected.length
  }
  return { offset: null, compared }
}

/**
 * Element-wise comparison of two tensors of the same layout, streamed in chunks. Bytes are
 * compared first; values are only decoded for elements whose bytes differ.
 */
export async function compareElements(
  expected: TensorData,
  actual: TensorData,
  layout: TensorLayout,
  elements: number,
  budget: ByteBudget
): Promise<ElementStats> {
  const { type, shape, fortranOrder } = layout
  const floating = type.kind === 'float' || type.kind === 'bfloat'
  const stats: ElementStats = {
    elements,
    compared: 0,
    differing: 0,
    nanDiffering: 0,
    maxAbsDiff: null,
    maxAbsValue: null,
    firstDifferent: null
  }
  for await (const chunk of pairedChunks(expected, actual, elements * type.size, budget)) {
    const count = Math.floor(chunk.expected.length / type.size)
    if (!chunk.expected.equals(chunk.actual)) {
      const first = chunk.position / type.size
      const viewA = new DataView(
        chunk.expected.buffer,
        chunk.expected.byteOffset,
        count * type.size
      )
      const viewB = new DataView(chunk.actual.buffer, chunk.actual.byteOffset, count * type.size)
      for (let i = 0; i < count; i++) {
        const offset = i * type.size
        if (bytesEqual(chunk.expected, chunk.actual, offset, type.size)) continue
        if (stats.differing++ === 0) {
          const index = unravelIndex(first + i, shape, fortranOrder)
          stats.firstDifferent = { flat: ravelIndex(index, shape), index }
        }
        recordDifference(
          stats,
          readElement(viewA, offset, type),
          readElement(viewB, offset, type),
          floating
        )
      }
    }
    stats.compared += count
  }
  return stats
}

function bytesEqual(a: Buffer, b: Buffer, offset: number, size: number): boolean {
  for (let k = offset; k < offset + size; k++) if (a[k] !== b[k]) return false
  return true
}

function recordDifference(
  stats: ElementStats,
  a: number | bigint,
  b: number | bigint,
  floating: boolean
): void {
  let difference: number
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    const [x, y] = [BigInt(a), BigInt(b)]
    difference = Number(x > y ? x - y : y - x)
  } else if (Number.isNaN(a) || Number.isNaN(b)) {
    stats.nanDiffering++
    return
  } else {
    difference = Math.abs(a - b)
    const value = Math.max(Math.abs(a), Math.abs(b))
    if (floating && (stats.maxAbsValue === null || value > stats.maxAbsValue))
      stats.maxAbsValue = value
  }
  if (stats.maxAbsDiff === null || difference > stats.maxAbsDiff) stats.maxAbsDiff = difference
}
