import { open } from 'node:fs/promises'
import { describe, expect, it } from '@jest/globals'
import {
  parseSafetensorsHeader,
  readSafetensorsHeader,
  safetensorsElementType,
  type SafetensorsHeader
} from '../../src/compare/safetensors.js'
import type { Parsed } from '../../src/compare/tensor-diff.js'
import { encode, safetensorsFile, safetensorsRaw, withTempDir, writePair } from './fixtures.js'

async function read(file: Buffer): Promise<Parsed<SafetensorsHeader>> {
  return withTempDir(async dir => {
    const [filePath] = await writePair(dir, 'x.safetensors', file, Buffer.alloc(0))
    const handle = await open(filePath)
    try {
      return await readSafetensorsHeader(handle, file.length)
    } finally {
      await handle.close()
    }
  })
}

function reasonOf(result: Parsed<SafetensorsHeader>): string {
  if (result.ok) throw new Error('expected a parse failure')
  return result.reason
}

describe('safetensors header', () => {
  it('reads metadata, tensors and absolute data offsets', async () => {
    const file = safetensorsFile(
      [
        { name: 'w', dtype: 'F32', shape: [2, 2], data: encode('f4', [1, 2, 3, 4]) },
        { name: 'b', dtype: 'BF16', shape: [3], data: encode('bf2', [0x3f80, 0, 0]) }
      ],
      { format: 'pt' }
    )
    const result = await read(file)
    if (!result.ok) throw new Error(result.reason)
    const { metadata, tensors, dataOffset } = result.value
    expect(dataOffset).toBe(file.length - 22)
    expect(metadata).toEqual(new Map([['format', 'pt']]))
    expect(tensors.get('w')).toEqual({
      dtype: 'F32',
      shape: [2, 2],
      begin: dataOffset,
      end: dataOffset + 16,
      type: { kind: 'float', size: 4, littleEndian: true }
    })
    expect(tensors.get('b')).toMatchObject({ begin: dataOffset + 16, end: dataOffset + 22 })
  })

  it('knows the decodable dtypes and keeps others as undecoded', () => {
    expect(safetensorsElementType('BF16')).toEqual({ kind: 'bfloat', size: 2, littleEndian: true })
    expect(safetensorsElementType('BOOL')).toEqual({ kind: 'bool', size: 1, littleEndian: true })
    expect(safetensorsElementType('F8_E4M3')).toBeNull()
    expect(safetensorsElementType('constructor')).toBeNull()
    const header = JSON.stringify({ q: { dtype: 'F8_E4M3', shape: [3], data_offsets: [0, 3] } })
    const result = parseSafetensorsHeader(Buffer.from(header), 8 + header.length + 3)
    expect(result).toMatchObject({ ok: true })
  })

  it('refuses a header length beyond the file or the limit, as a reason, not an allocation', async () => {
    const huge = Buffer.alloc(16)
    huge.writeBigUInt64LE(2n ** 63n)
    expect(reasonOf(await read(huge))).toMatch(/header length 9223372036854775808 exceeds/)
    const beyond = safetensorsRaw('{}', Buffer.alloc(0))
    beyond.writeBigUInt64LE(3n)
    expect(reasonOf(await read(beyond))).toMatch(/exceeds the file/)
    expect(reasonOf(await read(Buffer.alloc(5)))).toMatch(/shorter than the header length/)
  })

  it('refuses offsets outside the file and shapes that do not fit their bytes', () => {
    const cases: [object, RegExp][] = [
      [{ t: { dtype: 'F32', shape: [2], data_offsets: [0, 800] } }, /runs past the end/],
      [{ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, /does not fit/],
      [{ t: { dtype: 'F32', shape: [2 ** 50, 2 ** 50], data_offsets: [0, 8] } }, /does not fit/],
      [{ t: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, /begin <= end/],
      [{ t: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, /shape is not/],
      [{ t: { dtype: 'F32', shape: [2], data_offsets: [0, 8.5] } }, /data_offsets/],
      [{ t: { dtype: 7, shape: [2], data_offsets: [0, 8] } }, /dtype is not a string/],
      [{ __metadata__: { a: 1 } }, /values must be strings/],
      [[], /not a JSON object/]
    ]
    for (const [header, why] of cases) {
      const json = Buffer.from(JSON.stringify(header))
      const result = parseSafetensorsHeader(json, 8 + json.length + 8)
      expect(result.ok ? 'parsed' : result.reason).toMatch(why)
    }
    const notJson = parseSafetensorsHeader(Buffer.from('{"a":'), 13)
    expect(notJson.ok ? 'parsed' : notJson.reason).toMatch(/not JSON/)
  })
})
