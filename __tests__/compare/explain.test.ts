import { open, mkdir, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from '@jest/globals'
import {
  explainFileDifference,
  explainMismatch,
  formatExplanation,
  printable,
  type FileExplanation,
  type NpyExplanation,
  type SafetensorsExplanation
} from '../../src/compare/explain.js'
import { diffManifests } from '../../src/compare/manifest-diff.js'
import {
  describeNumpy,
  encode,
  npyFile,
  npyHeader,
  python,
  safetensorsFile,
  withTempDir,
  writePair,
  type TensorSpec
} from './fixtures.js'

const range = (n: number, scale = 1) => Array.from({ length: n }, (_, i) => i * scale)

async function explain(
  name: string,
  expected: Buffer,
  actual: Buffer,
  options?: { maxTensors?: number; maxBytes?: number }
): Promise<FileExplanation> {
  return withTempDir(async dir => {
    const [e, a] = await writePair(dir, path.basename(name), expected, actual)
    return explainFileDifference(e, a, name, options)
  })
}

function asNpy(e: FileExplanation): NpyExplanation {
  if (e.kind !== 'npy') throw new Error(`expected an npy explanation, got ${JSON.stringify(e)}`)
  return e
}

function asSafetensors(e: FileExplanation): SafetensorsExplanation {
  if (e.kind !== 'safetensors') throw new Error(`expected safetensors, got ${JSON.stringify(e)}`)
  return e
}

describe('explainFileDifference on .npy', () => {
  const values = range(12, 0.25)

  it('finds the one changed value: its index, the difference and nothing else', async () => {
    const changed = [...values]
    changed[6] += 0.5
    const e = asNpy(
      await explain(
        'W1.npy',
        npyFile('<f4', [3, 4], encode('f4', values)),
        npyFile('<f4', [3, 4], encode('f4', changed))
      )
    )
    expect(e.headerChanges).toEqual([])
    expect(e.elements).toEqual({
      elements: 12,
      compared: 12,
      differing: 1,
      nanDiffering: 0,
      maxAbsDiff: 0.5,
      maxAbsValue: 2,
      firstDifferent: { flat: 6, index: [1, 2] }
    })
    expect(e.truncated).toBe(false)
    expect(formatExplanation(e)).toEqual([
      'W1.npy: 1 of 12 elements differs (max |Δ| 0.5, first at [1, 2])'
    ])
  })

  it('flags a shape change as a header change and compares no elements', async () => {
    const data = encode('f4', values)
    const e = asNpy(
      await explain('W2.npy', npyFile('<f4', [3, 4], data), npyFile('<f4', [4, 3], data))
    )
    expect(e.headerChanges).toEqual(['shape (3, 4) → (4, 3)'])
    expect(e.elements).toBeNull()
    expect(formatExplanation(e)).toEqual(['W2.npy: header changed: shape (3, 4) → (4, 3)'])
  })

  it('flags dtype and fortran_order changes', async () => {
    const dtype = asNpy(
      await explain(
        'W.npy',
        npyFile('<f4', [4], encode('f4', [1, 2, 3, 4])),
        npyFile('<f8', [2], encode('f4', [1, 2, 3, 4]))
      )
    )
    expect(dtype.headerChanges).toEqual(['dtype <f4 → <f8', 'shape (4,) → (2,)'])
    const data = encode('i2', range(6))
    const order = asNpy(
      await explain(
        'W.npy',
        npyFile('<i2', [2, 3], data),
        npyFile('<i2', [2, 3], data, { fortranOrder: true })
      )
    )
    expect(order.headerChanges).toEqual(['fortran_order False → True'])
    expect(formatExplanation(order)).toEqual(['W.npy: header changed: fortran_order False → True'])
  })

  it('reports the logical index of a Fortran-ordered array', async () => {
    // Column-major storage of a 3x4 array: storage position 7 holds [1, 2].
    const changed = [...values]
    changed[7] = 100
    const e = asNpy(
      await explain(
        'F.npy',
        npyFile('<f4', [3, 4], encode('f4', values), { fortranOrder: true }),
        npyFile('<f4', [3, 4], encode('f4', changed), { fortranOrder: true })
      )
    )
    expect(e.elements?.firstDifferent).toEqual({ flat: 6, index: [1, 2] })
    expect(e.elements?.maxAbsDiff).toBe(100 - 7 * 0.25)
  })

  it('decodes float16 values', async () => {
    const e = asNpy(
      await explain(
        'h.npy',
        npyFile('<f2', [3], encode('f2', [0x3c00, 0x4000, 0x7c00])),
        npyFile('<f2', [3], encode('f2', [0x3e00, 0x4000, 0x7e00]))
      )
    )
    expect(e.elements).toMatchObject({ differing: 2, nanDiffering: 1, maxAbsDiff: 0.5 })
    expect(formatExplanation(e)).toEqual([
      'h.npy: 2 of 3 elements differ (max |Δ| 0.5, 1 involving NaN, first at [0])'
    ])
  })

  it('says when only the header bytes differ', async () => {
    const data = encode('f4', values)
    const padded = npyFile('<f4', [3, 4], data, { version: 2 })
    const e = asNpy(await explain('W.npy', npyFile('<f4', [3, 4], data), padded))
    expect(e.headerChanges).toEqual([])
    expect(e.elements?.differing).toBe(0)
    expect(e.note).toMatch(/array data is equal/)
  })

  it('falls back to a byte comparison with a note for hostile files', async () => {
    const good = npyFile('<f4', [3, 4], encode('f4', values))
    const lying = Buffer.from(good)
    lying.writeUInt16LE(65535, 8)
    const e = await explain('W.npy', good, lying)
    expect(e).toEqual({
      kind: 'bytes',
      name: 'W.npy',
      expectedSize: good.length,
      actualSize: good.length,
      truncated: false,
      firstDifferentOffset: 8,
      note: 'not a valid .npy (actual: header length 65535 runs past the end of the file)'
    })
    expect(formatExplanation(e)).toEqual([
      `W.npy: ${good.length} bytes, first difference at byte 8`,
      '  note: not a valid .npy (actual: header length 65535 runs past the end of the file)'
    ])

    const huge = Buffer.concat([npyHeader('<f8', [2 ** 52, 2 ** 52]), Buffer.alloc(8)])
    const both = await explain('W.npy', huge, Buffer.concat([huge, Buffer.alloc(1)]))
    expect(both).toMatchObject({ kind: 'bytes', firstDifferentOffset: huge.length })
    expect(both.kind === 'bytes' && both.note).toMatch(
      /^not a valid \.npy \(expected: .*; actual: /
    )

    const pickle = await explain('o.npy', npyFile('|O', [1], Buffer.alloc(8)), good)
    expect(pickle.kind === 'bytes' && pickle.note).toMatch(/never unpickled/)
  })

  it('reports identical arrays as equal', async () => {
    const file = npyFile('<f4', [3, 4], encode('f4', values))
    const e = asNpy(await explain('W.npy', file, file))
    expect(e.elements).toMatchObject({ differing: 0, compared: 12, firstDifferent: null })
    expect(formatExplanation(e)[0]).toBe('W.npy: 12 elements, none differ')
  })
})

describe('explainFileDifference on other files', () => {
  it('gives the sizes and the first differing byte', async () => {
    const e = await explain('config.txt', Buffer.from('{"lr": 0.1}'), Buffer.from('{"lr": 0.2}'))
    expect(e).toEqual({
      kind: 'bytes',
      name: 'config.txt',
      expectedSize: 11,
      actualSize: 11,
      truncated: false,
      firstDifferentOffset: 9
    })
    expect(formatExplanation(e)).toEqual(['config.txt: 11 bytes, first difference at byte 9'])
  })

  it('puts the first difference at the end of the shorter file when one is a prefix', async () => {
    const e = await explain('a.txt', Buffer.from('abc'), Buffer.from('abcdef'))
    expect(e).toMatchObject({ firstDifferentOffset: 3, expectedSize: 3, actualSize: 6 })
    expect(formatExplanation(e)).toEqual(['a.txt: size 3 → 6 bytes, first difference at byte 3'])
  })

  it('reports identical files, and a byte budget that ran out, without inventing an offset', async () => {
    const same = await explain('a.bin', Buffer.from('xyz'), Buffer.from('xyz'))
    expect(same).toMatchObject({ firstDifferentOffset: null, truncated: false })
    expect(formatExplanation(same)).toEqual(['a.bin: 3 bytes, no difference'])
    const late = Buffer.alloc(4096)
    late[4000] = 1
    const cut = await explain('a.bin', Buffer.alloc(4096), late, { maxBytes: 1000 })
    expect(cut).toMatchObject({ firstDifferentOffset: null, truncated: true })
    expect(formatExplanation(cut)[0]).toMatch(/no difference before the byte budget ran out/)
  })

  it('refuses symlinks, directories and missing files without throwing', async () => {
    await withTempDir(async dir => {
      const file = path.join(dir, 'f')
      await writeFile(file, 'x')
      await symlink(file, path.join(dir, 'link'))
      await mkdir(path.join(dir, 'd'))
      for (const other of ['link', 'd', 'missing']) {
        const e = await explainFileDifference(file, path.join(dir, other), 'f')
        expect(e).toMatchObject({
          kind: 'unreadable',
          note: expect.stringMatching(/^cannot compare/)
        })
      }
    })
  })

  it('makes hostile names printable on one line', () => {
    expect(printable('a\nb\u2028c\u0000')).toBe('a\\u000ab\\u2028c\\u0000')
    expect(printable('x'.repeat(300))).toHaveLength(201)
    const lines = formatExplanation({ kind: 'unreadable', name: 'evil\n# heading', note: 'n' })
    expect(lines).toEqual(['evil\\u000a# heading: n'])
  })
})

describe('explainFileDifference on .safetensors', () => {
  const tensor = (name: string, values: number[], dtype = 'F32', shape = [values.length]) => ({
    name,
    dtype,
    shape,
    data: encode(dtype === 'F64' ? 'f8' : 'f4', values)
  })

  it('reports added, removed, changed and re-typed tensors and metadata changes', async () => {
    const expected = safetensorsFile(
      [
        tensor('a.weight', range(6), 'F32', [2, 3]),
        tensor('b.bias', [1, 2]),
        tensor('c.gone', [0]),
        tensor('d.same', [5, 6]),
        tensor('e.typed', [1, 2])
      ],
      { format: 'pt', epoch: '3' }
    )
    const changedWeights = range(6)
    changedWeights[4] = 4.75
    const actual = safetensorsFile(
      [
        tensor('e.typed', [1, 2], 'F64'),
        tensor('d.same', [5, 6]),
        tensor('b.bias', [1, 2, 3]),
        tensor('a.weight', changedWeights, 'F32', [2, 3]),
        tensor('f.new', [9])
      ],
      { format: 'np', extra: 'yes' }
    )
    const e = asSafetensors(await explain('model.safetensors', expected, actual))
    expect(e.tensors.map(t => [t.name, t.change])).toEqual([
      ['a.weight', 'changed'],
      ['b.bias', 'changed'],
      ['c.gone', 'removed'],
      ['e.typed', 'changed'],
      ['f.new', 'added']
    ])
    expect(e.tensors[0].elements).toMatchObject({
      differing: 1,
      maxAbsDiff: 0.75,
      firstDifferent: { flat: 4, index: [1, 1] }
    })
    expect(e.tensors[1]).toMatchObject({ headerChanges: ['shape [2] → [3]'], elements: null })
    expect(e.tensors[3].headerChanges).toEqual(['dtype F32 → F64'])
    expect(e.metadataChanges).toEqual([
      'epoch: removed (was "3")',
      'extra: added "yes"',
      'format: "pt" → "np"'
    ])
    expect(e.moreTensors).toBe(0)
    expect(formatExplanation(e)).toEqual([
      'model.safetensors: 5 tensors differ, metadata changed',
      '  a.weight: 1 of 6 elements differs (max |Δ| 0.75, first at [1, 1])',
      '  b.bias: header changed: shape [2] → [3]',
      '  c.gone: removed (was F32 [1])',
      '  e.typed: header changed: dtype F32 → F64',
      '  f.new: added (F32 [1])',
      '  __metadata__ epoch: removed (was "3")',
      '  __metadata__ extra: added "yes"',
      '  __metadata__ format: "pt" → "np"'
    ])
  })

  it('decodes bfloat16 and float16 tensors', async () => {
    const spec = (bits: number[], dtype: string): TensorSpec => ({
      name: dtype,
      dtype,
      shape: [bits.length],
      data: encode('bf2', bits)
    })
    const e = asSafetensors(
      await explain(
        'm.safetensors',
        safetensorsFile([spec([0x3f80, 0x4049], 'BF16'), spec([0x3c00, 0x3c00], 'F16')]),
        safetensorsFile([spec([0x3f80, 0x4040], 'BF16'), spec([0x3c00, 0xbc00], 'F16')])
      )
    )
    expect(e.tensors.map(t => [t.name, t.elements?.maxAbsDiff])).toEqual([
      ['BF16', 0.140625],
      ['F16', 2]
    ])
  })

  it('compares undecoded dtypes byte by byte', async () => {
    const spec = (data: number[]): TensorSpec => ({
      name: 'q',
      dtype: 'F8_E4M3',
      shape: [4],
      data: Buffer.from(data)
    })
    const e = asSafetensors(
      await explain(
        'm.safetensors',
        safetensorsFile([spec([1, 2, 3, 4])]),
        safetensorsFile([spec([1, 2, 9, 4])])
      )
    )
    expect(e.tensors).toEqual([
      expect.objectContaining({ name: 'q', elements: null, firstDifferentByte: 2 })
    ])
    expect(formatExplanation(e)[1]).toBe(
      '  q: F8_E4M3 is not decoded: bytes differ from byte 2 of the tensor'
    )
  })

  it('caps the reported tensors and counts the rest', async () => {
    const names = range(30).map(i => `layer.${String(i).padStart(2, '0')}`)
    const expected = safetensorsFile(names.map(n => tensor(n, [1, 2, 3])))
    const actual = safetensorsFile(
      names.map((n, i) => tensor(n, i % 3 === 0 ? [1, 2, 4] : [1, 2, 3]))
    )
    const e = asSafetensors(await explain('m.safetensors', expected, actual, { maxTensors: 4 }))
    expect(e.tensors.map(t => t.name)).toEqual(['layer.00', 'layer.03', 'layer.06', 'layer.09'])
    expect(e.moreTensors).toBe(6)
    expect(formatExplanation(e)).toContain('  … 6 more tensors differ')
    expect(formatExplanation(e)[0]).toBe('m.safetensors: 10 tensors differ')
  })

  it('stops at the byte budget and says so', async () => {
    const big = range(1000)
    const changed = [...big]
    changed[999] = -1
    const e = asSafetensors(
      await explain(
        'm.safetensors',
        safetensorsFile([tensor('a', big), tensor('b', [1])]),
        safetensorsFile([tensor('a', changed), tensor('b', [2])]),
        { maxBytes: 1000 }
      )
    )
    expect(e.truncated).toBe(true)
    expect(e.tensors).toEqual([])
    expect(formatExplanation(e)).toContain(
      '  (the byte budget ran out: later data was not compared)'
    )
  })

  it('reports equal tensors in a differently laid out file, and invalid files as bytes', async () => {
    const tensors = [tensor('a', [1, 2]), tensor('b', [3])]
    const e = asSafetensors(
      await explain(
        'm.safetensors',
        safetensorsFile(tensors),
        safetensorsFile([...tensors].reverse())
      )
    )
    expect(e.tensors).toEqual([])
    expect(e.note).toMatch(/every tensor and the metadata are equal/)
    const broken = safetensorsFile(tensors)
    broken.writeBigUInt64LE(2n ** 40n)
    const invalid = await explain('m.safetensors', safetensorsFile(tensors), broken)
    expect(invalid).toMatchObject({
      kind: 'bytes',
      firstDifferentOffset: 0,
      note: expect.stringMatching(
        /^not a valid \.safetensors \(actual: header length 1099511627776/
      )
    })
  })
})

describe('explainMismatch', () => {
  it('explains the changed files of a manifest diff, capped', async () => {
    await withTempDir(async dir => {
      const [expectedDir, actualDir] = [path.join(dir, 'reproduced'), path.join(dir, 'downloaded')]
      for (const root of [expectedDir, actualDir])
        await mkdir(path.join(root, 'w'), { recursive: true })
      const write = (root: string, name: string, body: Buffer) =>
        writeFile(path.join(root, ...name.split('/')), body)
      await write(expectedDir, 'w/a.npy', npyFile('<f4', [2], encode('f4', [1, 2])))
      await write(actualDir, 'w/a.npy', npyFile('<f4', [2], encode('f4', [1, 3])))
      await write(expectedDir, 'w/b.txt', Buffer.from('one'))
      await write(actualDir, 'w/b.txt', Buffer.from('two'))
      const entry = (p: string, digit: string) => ({ path: p, size: 1, sha256: digit.repeat(64) })
      const diff = diffManifests(
        [entry('w/a.npy', 'a'), entry('w/b.txt', 'b'), entry('../x', 'c')],
        [entry('w/a.npy', 'd'), entry('w/b.txt', 'e'), entry('../x', 'f')]
      )
      const all = await explainMismatch(expectedDir, actualDir, diff)
      expect([...all.keys()]).toEqual(['../x', 'w/a.npy', 'w/b.txt'])
      expect(all.get('../x')).toEqual({ kind: 'unreadable', name: '../x', note: 'unsafe path' })
      expect(formatExplanation(all.get('w/a.npy')!)).toEqual([
        'w/a.npy: 1 of 2 elements differs (max |Δ| 1, first at [1])'
      ])
      expect(all.get('w/b.txt')).toMatchObject({ kind: 'bytes', firstDifferentOffset: 0 })
      const capped = await explainMismatch(expectedDir, actualDir, diff, { maxFiles: 1 })
      expect([...capped.keys()]).toEqual(['../x'])

      const single = path.join(dir, 'model.npy')
      await writeFile(single, npyFile('<f4', [2], encode('f4', [0, 2])))
      const one = diffManifests([entry('w/a.npy', 'a')], [entry('w/a.npy', 'b')])
      const fromFile = await explainMismatch(expectedDir, single, one)
      expect(fromFile.get('w/a.npy')).toMatchObject({ kind: 'npy', elements: { maxAbsDiff: 1 } })
    })
  })
})

describe('big files', () => {
  it('streams a 20 MiB .npy comparison quickly with bounded memory', async () => {
    await withTempDir(async dir => {
      const elements = 5 * 1024 * 1024
      const header = npyHeader('<f4', [elements / 1024, 1024])
      const chunk = encode('f4', range(1 << 16, 0.001))
      const writeArray = async (file: string, change: boolean) => {
        const handle = await open(file, 'w')
        await handle.write(header)
        for (let i = 0; i < (elements * 4) / chunk.length; i++) await handle.write(chunk)
        if (change) {
          const last = Buffer.alloc(4)
          last.writeFloatLE(-1)
          await handle.write(last, 0, 4, header.length + (elements - 1) * 4)
        }
        await handle.close()
      }
      const [e, a] = [path.join(dir, 'e.npy'), path.join(dir, 'a.npy')]
      await writeArray(e, false)
      await writeArray(a, true)

      const baseline = process.memoryUsage().arrayBuffers
      let peak = baseline
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().arrayBuffers)
      }, 5)
      const started = performance.now()
      const result = asNpy(await explainFileDifference(e, a, 'big.npy'))
      const elapsed = performance.now() - started
      clearInterval(sampler)
      peak = Math.max(peak, process.memoryUsage().arrayBuffers)

      expect(result.elements).toMatchObject({
        elements,
        compared: elements,
        differing: 1,
        firstDifferent: { flat: elements - 1, index: [elements / 1024 - 1, 1023] }
      })
      expect(result.elements?.maxAbsDiff).toBeCloseTo(1 + ((1 << 16) - 1) * 0.001, 2)
      expect(elapsed).toBeLessThan(5000)
      // Two 1 MiB chunk buffers, not the 2 × 20 MiB of the files.
      expect(peak - baseline).toBeLessThan(12 * 1024 * 1024)
    })
  })
})

describeNumpy('explainFileDifference on arrays written by numpy', () => {
  it('locates a changed element in C and Fortran order', async () => {
    await withTempDir(async dir => {
      python(
        `
import sys
import numpy as np
out = sys.argv[1]
a = np.linspace(-1, 1, 20, dtype=np.float64).reshape(4, 5)
b = a.copy()
b[2, 3] += 0.125
np.save(out + '/c-e.npy', a)
np.save(out + '/c-a.npy', b)
np.save(out + '/f-e.npy', np.asfortranarray(a))
np.save(out + '/f-a.npy', np.asfortranarray(b))
`,
        dir
      )
      for (const order of ['c', 'f']) {
        const e = asNpy(
          await explainFileDifference(
            path.join(dir, `${order}-e.npy`),
            path.join(dir, `${order}-a.npy`),
            'x.npy'
          )
        )
        expect(e.expected.fortranOrder).toBe(order === 'f')
        expect(e.elements).toMatchObject({
          elements: 20,
          differing: 1,
          firstDifferent: { flat: 13, index: [2, 3] }
        })
        expect(e.elements?.maxAbsDiff).toBeCloseTo(0.125, 12)
      }
    })
  })
})
