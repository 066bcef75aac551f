import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from '@jest/globals'
import { npyElementType, parseNpyHeader, type NpyHeader } from '../../src/compare/npy.js'
import { readElement } from '../../src/compare/tensor-diff.js'
import { describeNumpy, encode, npyFile, npyHeader, python, withTempDir } from './fixtures.js'

function parse(file: Buffer) {
  return parseNpyHeader(file, file.length)
}

function parsed(file: Buffer): NpyHeader {
  const result = parse(file)
  if (!result.ok) throw new Error(result.reason)
  return result.value
}

function reason(file: Buffer): string {
  const result = parse(file)
  if (result.ok) throw new Error('expected a parse failure')
  return result.reason
}

describe('parseNpyHeader', () => {
  it('reads descr, shape, fortran_order and the data offset of every format version', () => {
    for (const version of [1, 2, 3] as const) {
      const header = npyHeader('<f4', [3, 4], { version })
      const file = Buffer.concat([header, Buffer.alloc(48)])
      expect(parsed(file)).toEqual({
        dtype: '<f4',
        shape: [3, 4],
        fortranOrder: false,
        dataOffset: header.length,
        type: { kind: 'float', size: 4, littleEndian: true }
      })
    }
  })

  it('accepts scalars, 1-d shapes, zero-size arrays, double quotes and Python 2 longs', () => {
    expect(parsed(npyFile('<f8', [], Buffer.alloc(8))).shape).toEqual([])
    expect(parsed(npyFile('|b1', [5], Buffer.alloc(5))).shape).toEqual([5])
    expect(parsed(npyFile('<i4', [0, 7], Buffer.alloc(0))).shape).toEqual([0, 7])
    const dict = `{"descr": ">i2", "fortran_order": True, "shape": (2L, 3L)}`
    const header = parsed(Buffer.concat([npyHeader('', [], { dict }), Buffer.alloc(12)]))
    expect(header).toMatchObject({ dtype: '>i2', shape: [2, 3], fortranOrder: true })
    expect(header.type.littleEndian).toBe(false)
  })

  it('maps the supported dtypes and refuses the others, objects above all', () => {
    for (const descr of ['<f2', '<f4', '>f8', '<i1', '|i1', '<i8', '|u1', '>u4', '<u8', '|b1']) {
      expect(npyElementType(descr).ok).toBe(true)
    }
    for (const descr of ['|O', '<c8', '<U5', '|S3', '<f16', '|f4', '=f4', '<M8[ns]', '']) {
      expect(npyElementType(descr).ok).toBe(false)
    }
    expect(reason(npyFile('|O', [2], Buffer.alloc(16)))).toMatch(
      /unsupported dtype "\|O".*never unpickled/
    )
  })

  it('is a strict literal parser, never an evaluator', () => {
    const hostile: [string, RegExp][] = [
      [
        `{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': __import__('os').system('id')}`,
        /expected a string, True, False, an integer or a tuple/
      ],
      [`{'descr': '<f4', 'fortran_order': False, 'shape': (3)}`, /\(x\) is not a tuple/],
      [`{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}`, /duplicate key/],
      [`{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}`, /fortran_order is not a bool/],
      [`{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}`, /header keys are/],
      [`{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,)}`, /expected a string/],
      [`{'descr': '<f\\x34', 'fortran_order': False, 'shape': (3,)}`, /escape/],
      [`{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} junk`, /trailing characters/],
      [`{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}`, /too large/]
    ]
    for (const [dict, why] of hostile) {
      expect(reason(Buffer.concat([npyHeader('', [], { dict }), Buffer.alloc(12)]))).toMatch(why)
    }
  })

  it('refuses hostile lengths and shapes without allocating by them', () => {
    const file = npyFile('<f4', [3], encode('f4', [1, 2, 3]))
    const beyond = Buffer.from(file)
    beyond.writeUInt16LE(60000, 8)
    expect(reason(beyond)).toMatch(/runs past the end of the file/)

    const v2 = npyFile('<f4', [3], encode('f4', [1, 2, 3]), { version: 2 })
    v2.writeUInt32LE(0xffffffff, 8)
    expect(reason(v2)).toMatch(/exceeds 65536/)

    const huge = npyFile('<f4', [10 ** 15, 10 ** 15], Buffer.alloc(16))
    expect(reason(huge)).toMatch(/needs more than the 16 data bytes/)

    expect(reason(npyFile('<f4', [3], Buffer.alloc(16)))).toMatch(
      /needs 12 data bytes, the file has 16/
    )
    expect(reason(Buffer.from('PK\x03\x04 not an npy'))).toMatch(/magic/)
    const v9 = Buffer.from(file)
    v9[6] = 9
    expect(reason(v9)).toMatch(/version 9\.0/)
    expect(reason(file.subarray(0, 9))).toMatch(/magic/)
  })
})

describeNumpy('parseNpyHeader against files written by numpy', () => {
  const script = `
import json, sys
import numpy as np
from numpy.lib import format as npformat
out = sys.argv[1]
a = (np.arange(12, dtype=np.float32) * 0.5).reshape(3, 4)
np.save(out + '/c.npy', a)
np.save(out + '/f.npy', np.asfortranarray(a))
np.save(out + '/be.npy', np.arange(6, dtype='>i4').reshape(2, 3))
np.save(out + '/b.npy', np.array([True, False, True]))
np.save(out + '/scalar.npy', np.float64(2.5))
np.save(out + '/obj.npy', np.array([{'a': 1}], dtype=object), allow_pickle=True)
with open(out + '/v2.npy', 'wb') as f:
    npformat.write_array(f, np.arange(3, dtype=np.uint16), version=(2, 0))
with open(out + '/v3.npy', 'wb') as f:
    npformat.write_array(f, np.arange(3, dtype=np.int8), version=(3, 0))
h = np.array([0.1, -2.5, 65504, 6e-8, 1e-5, np.inf, -0.0], dtype=np.float16)
np.save(out + '/h.npy', h)
print(json.dumps([repr(float(x)) for x in h]))
`

  it('reads the headers numpy writes and refuses its object arrays', async () => {
    await withTempDir(async dir => {
      const printed = JSON.parse(python(script, dir)) as string[]
      const halfValues = printed.map(repr => (repr === 'inf' ? Infinity : Number(repr)))
      const load = async (name: string) => {
        const bytes = await readFile(path.join(dir, name))
        return { bytes, result: parseNpyHeader(bytes, bytes.length) }
      }
      const expectations: [string, Partial<NpyHeader>][] = [
        ['c.npy', { dtype: '<f4', shape: [3, 4], fortranOrder: false }],
        ['f.npy', { dtype: '<f4', shape: [3, 4], fortranOrder: true }],
        ['be.npy', { dtype: '>i4', shape: [2, 3], fortranOrder: false }],
        ['b.npy', { dtype: '|b1', shape: [3] }],
        ['scalar.npy', { dtype: '<f8', shape: [] }],
        ['v2.npy', { dtype: '<u2', shape: [3] }],
        ['v3.npy', { dtype: '|i1', shape: [3] }]
      ]
      for (const [name, header] of expectations) {
        const { result } = await load(name)
        expect(result).toMatchObject({ ok: true, value: header })
      }
      const { bytes, result } = await load('be.npy')
      if (!result.ok) throw new Error(result.reason)
      const view = new DataView(bytes.buffer, bytes.byteOffset + result.value.dataOffset)
      expect([0, 1, 2, 3, 4, 5].map(i => readElement(view, i * 4, result.value.type))).toEqual([
        0, 1, 2, 3, 4, 5
      ])

      const half = await load('h.npy')
      if (!half.result.ok) throw new Error(half.result.reason)
      const { dataOffset, type } = half.result.value
      const halfView = new DataView(half.bytes.buffer, half.bytes.byteOffset + dataOffset)
      expect(halfValues.map((_, i) => readElement(halfView, i * 2, type))).toEqual(halfValues)

      const object = await load('obj.npy')
      expect(object.result).toEqual({
        ok: false,
        reason: expect.stringMatching(/unsupported dtype "\|O"/)
      })
    })
  })
})
