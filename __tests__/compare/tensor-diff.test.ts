import { open } from 'node:fs/promises'
import { describe, expect, it } from '@jest/globals'
import {
  bfloat16ToNumber,
  compareElements,
  elementCount,
  firstDifferentByte,
  float16ToNumber,
  ravelIndex,
  unravelIndex,
  type ElementType
} from '../../src/compare/tensor-diff.js'
import { encode, withTempDir, writePair } from './fixtures.js'

describe('half-precision decoders', () => {
  it('decodes IEEE float16: normals, subnormals, zeros, infinities and NaN', () => {
    expect(float16ToNumber(0x3c00)).toBe(1)
    expect(float16ToNumber(0xc000)).toBe(-2)
    expect(float16ToNumber(0x3555)).toBeCloseTo(0.333251953125, 12)
    expect(float16ToNumber(0x7bff)).toBe(65504)
    expect(float16ToNumber(0x0001)).toBe(2 ** -24)
    expect(float16ToNumber(0x03ff)).toBe(1023 * 2 ** -24)
    expect(Object.is(float16ToNumber(0x8000), -0)).toBe(true)
    expect(float16ToNumber(0x7c00)).toBe(Infinity)
    expect(float16ToNumber(0xfc00)).toBe(-Infinity)
    expect(float16ToNumber(0x7e00)).toBeNaN()
  })

  it('decodes bfloat16 as the upper half of a float32', () => {
    expect(bfloat16ToNumber(0x3f80)).toBe(1)
    expect(bfloat16ToNumber(0xc040)).toBe(-3)
    expect(bfloat16ToNumber(0x3f00)).toBe(0.5)
    expect(bfloat16ToNumber(0x4049)).toBe(3.140625)
    expect(bfloat16ToNumber(0x7f80)).toBe(Infinity)
    expect(bfloat16ToNumber(0xff80)).toBe(-Infinity)
    expect(bfloat16ToNumber(0x7fc0)).toBeNaN()
  })
})

describe('indices', () => {
  it('unravels storage positions in C and Fortran order and ravels back to C order', () => {
    expect(unravelIndex(7, [3, 4], false)).toEqual([1, 3])
    expect(unravelIndex(7, [3, 4], true)).toEqual([1, 2])
    expect(unravelIndex(23, [2, 3, 4], false)).toEqual([1, 2, 3])
    expect(unravelIndex(0, [], false)).toEqual([])
    expect(ravelIndex([1, 2], [3, 4])).toBe(6)
    expect(ravelIndex([1, 2, 3], [2, 3, 4])).toBe(23)
    for (let p = 0; p < 24; p++)
      expect(ravelIndex(unravelIndex(p, [2, 3, 4], false), [2, 3, 4])).toBe(p)
  })

  it('counts elements without overflowing on hostile shapes', () => {
    expect(elementCount([3, 4], 100)).toBe(12)
    expect(elementCount([], 100)).toBe(1)
    expect(elementCount([2 ** 40, 2 ** 40, 0], 100)).toBe(0)
    expect(elementCount([2 ** 40, 2 ** 40], Number.MAX_SAFE_INTEGER)).toBeNull()
    expect(elementCount([11, 10], 100)).toBeNull()
  })
})

const f4: ElementType = { kind: 'float', size: 4, littleEndian: true }

async function compare(
  type: ElementType,
  shape: number[],
  expected: Buffer,
  actual: Buffer,
  maxBytes = 1 << 30
) {
  return withTempDir(async dir => {
    const [e, a] = await writePair(dir, 'data.bin', expected, actual)
    const [he, ha] = [await open(e), await open(a)]
    try {
      const elements = expected.length / type.size
      return await compareElements(
        { handle: he, offset: 0 },
        { handle: ha, offset: 0 },
        { type, shape, fortranOrder: false },
        elements,
        { remaining: maxBytes }
      )
    } finally {
      await he.close()
      await ha.close()
    }
  })
}

describe('compareElements', () => {
  it('counts differing elements, the largest difference and the first index', async () => {
    const stats = await compare(
      f4,
      [2, 3],
      encode('f4', [0, 1, 2, 3, 4, 5]),
      encode('f4', [0, 1, 2.5, 3, 1, 5])
    )
    expect(stats).toEqual({
      elements: 6,
      compared: 6,
      differing: 2,
      nanDiffering: 0,
      maxAbsDiff: 3,
      maxAbsValue: 4,
      firstDifferent: { flat: 2, index: [0, 2] }
    })
  })

  it('compares bits first: equal NaNs are equal, -0 vs 0 differs by 0, NaN stays out of the max', async () => {
    const stats = await compare(
      f4,
      [4],
      encode('f4', [NaN, 0, 1, 7]),
      encode('f4', [NaN, -0, NaN, 7.25])
    )
    expect(stats.differing).toBe(3)
    expect(stats.nanDiffering).toBe(1)
    expect(stats.maxAbsDiff).toBe(0.25)
    expect(stats.firstDifferent).toEqual({ flat: 1, index: [1] })
  })

  it('reports a null maximum when every difference involves NaN', async () => {
    const stats = await compare(f4, [2], encode('f4', [1, 2]), encode('f4', [NaN, 2]))
    expect(stats.maxAbsDiff).toBeNull()
    expect(stats.nanDiffering).toBe(1)
  })

  it('takes 64-bit integer differences exactly through BigInt', async () => {
    const i8: ElementType = { kind: 'int', size: 8, littleEndian: true }
    const stats = await compare(
      i8,
      [2],
      encode('i8', [-(2n ** 62n), 5n]),
      encode('i8', [2n ** 62n, 5n])
    )
    expect(stats.maxAbsDiff).toBe(2 ** 63)
    expect(stats.differing).toBe(1)
  })

  it('decodes big-endian data', async () => {
    const be: ElementType = { kind: 'int', size: 2, littleEndian: false }
    const stats = await compare(
      be,
      [2],
      encode('i2', [1, -300], false),
      encode('i2', [1, 300], false)
    )
    expect(stats.maxAbsDiff).toBe(600)
  })

  it('stops at the byte budget and says how far it got', async () => {
    const values = Array.from({ length: 1000 }, (_, i) => i)
    const changed = [...values]
    changed[900] = -1
    const stats = await compare(f4, [1000], encode('f4', values), encode('f4', changed), 400)
    expect(stats.compared).toBe(100)
    expect(stats.differing).toBe(0)
  })
})

describe('firstDifferentByte', () => {
  it('finds the first differing byte across chunk boundaries', async () => {
    const a = Buffer.alloc(3 << 20, 7)
    const b = Buffer.from(a)
    b[(2 << 20) + 5] = 8
    b[(2 << 20) + 9] = 8
    const result = await withTempDir(async dir => {
      const [e, x] = await writePair(dir, 'big.bin', a, b)
      const [he, hx] = [await open(e), await open(x)]
      try {
        return await firstDifferentByte(
          { handle: he, offset: 0 },
          { handle: hx, offset: 0 },
          a.length,
          { remaining: Infinity }
        )
      } finally {
        await he.close()
        await hx.close()
      }
    })
    expect(result.offset).toBe((2 << 20) + 5)
  })
})
