import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from '@jest/globals'
import {
  explainFileDifference,
  explainMismatchLines,
  formatExplanation
} from '../../src/compare/explain.js'
import { diffManifests } from '../../src/compare/manifest-diff.js'
import { encode, npyFile, safetensorsFile, withTempDir, writePair } from './fixtures.js'

// Item 6 of issue 10: what a numeric mismatch looks like, and which JSON keys differ.

const range = (n: number, scale = 1, offset = 0) =>
  Array.from({ length: n }, (_, i) => offset + i * scale)

async function explainJson(expected: unknown, actual: unknown | string) {
  return withTempDir(async dir => {
    const text = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v, null, 2))
    const [e, a] = await writePair(dir, 'config.json', text(expected), text(actual))
    return explainFileDifference(e, a, 'config.json')
  })
}

describe('a differing .json file', () => {
  it('names the keys that differ, as paths, in document order', async () => {
    const e = await explainJson(
      { layers: 2, optimizer: { lr: 0.1, betas: [0.9, 0.999, 1] }, name: 'm', gone: true },
      { layers: 2, optimizer: { lr: 0.2, betas: [0.9, 0.99] }, name: 'm', 'new key': [1] }
    )
    expect(e).toMatchObject({ kind: 'json', moreKeys: 0 })
    expect(formatExplanation(e)).toEqual([
      'config.json: 5 keys differ',
      '  optimizer.lr: 0.1 → 0.2',
      '  optimizer.betas[1]: 0.999 → 0.99',
      '  optimizer.betas[2]: removed (was 1)',
      '  gone: removed (was true)',
      '  ["new key"]: added [1]'
    ])
  })

  it('says when only the formatting or key order differs', async () => {
    const e = await explainJson('{"a": 1, "b": [1, 2]}', '{"b":[1,2],"a":1}')
    expect(formatExplanation(e)).toEqual([
      'config.json: no key differs',
      '  note: every JSON value is equal: the formatting or the key order differs'
    ])
  })

  it('reports a changed type and a changed document, cuts long values, caps the keys', async () => {
    const typed = await explainJson({ a: { b: 1 } }, { a: [1] })
    expect(formatExplanation(typed)).toEqual(['config.json: 1 key differs', '  a: {"b":1} → [1]'])
    const whole = await explainJson(1, 2)
    expect(formatExplanation(whole)).toEqual([
      'config.json: 1 key differs',
      '  (the whole document): 1 → 2'
    ])
    const long = await explainJson({ s: 'x'.repeat(100) }, { s: 'y' })
    expect(formatExplanation(long)[1]).toBe(`  s: "${'x'.repeat(59)}… → "y"`)
    const many = Object.fromEntries(range(25).map(i => [`k${i}`, i]))
    const changed = Object.fromEntries(range(25).map(i => [`k${i}`, i + 1]))
    const capped = formatExplanation(await explainJson(many, changed))
    expect(capped[0]).toBe('config.json: 25 keys differ')
    expect(capped).toHaveLength(1 + 20 + 1)
    expect(capped.at(-1)).toBe('  … 5 more keys differ')
  })

  it('falls back to bytes for invalid JSON, and keeps hostile keys on one line', async () => {
    const invalid = await explainJson('{"a": 1}', '{"a": ')
    expect(invalid).toMatchObject({ kind: 'bytes' })
    expect(formatExplanation(invalid).join('\n')).toContain('not a valid JSON (actual: ')
    const hostile = await explainJson({ 'a\nb': 1 }, { 'a\nb': 2 })
    expect(formatExplanation(hostile)).toEqual(['config.json: 1 key differs', '  ["a\\nb"]: 1 → 2'])
  })
})

describe('floating-point nondeterminism', () => {
  const f32 = (name: string, values: number[]) => ({
    name,
    dtype: 'F32',
    shape: [values.length],
    data: encode('f4', values)
  })
  const weights = range(400, 0.01, 0.5)
  const bias = range(100, -0.02, 1)
  /** Every 10th element off by a relative 1e-6: what another CPU kernel's rounding does. */
  const jitter = (values: number[]) =>
    values.map((v, i) => (i % 10 === 0 ? Math.fround(v * (1 + 1e-6) + 1e-6) : v))

  async function linesFor(expected: Buffer, actual: Buffer, name = 'model.safetensors') {
    return withTempDir(async dir => {
      const [e, a] = [path.join(dir, 'reproduced'), path.join(dir, 'downloaded')]
      await mkdir(e)
      await mkdir(a)
      await writeFile(path.join(e, name), expected)
      await writeFile(path.join(a, name), actual)
      const entry = (digit: string) => ({ path: name, size: 1, sha256: digit.repeat(64) })
      return (await explainMismatchLines(e, a, diffManifests([entry('a')], [entry('b')])))[name]
    })
  }

  const model = (w: number[], b: number[]) =>
    safetensorsFile([f32('fc.bias', b), f32('fc.weight', w)])

  it('is said when small differences spread over several tensors', async () => {
    const lines = await linesFor(model(weights, bias), model(jitter(weights), jitter(bias)))
    expect(lines[0]).toBe('model.safetensors: 2 tensors differ')
    expect(lines.at(-1)).toMatch(
      /^ {2}note: this looks like floating-point nondeterminism, not a targeted edit: 2 tensors differ in 10% of their elements, each by at most [0-9.e-]+ of its largest value, with no NaN or infinity involved\. CPU kernels, thread counts and library versions do this: pin the CPU level with build\.isa and check with `verify-model build --cross-check` before signing\. The verdict stays mismatch$/
    )
  })

  it('is not said for a targeted edit: one element, one tensor, a large change, NaN, a new tensor', async () => {
    const expected = model(weights, bias)
    const say = (lines: string[]) => lines.some(line => line.includes('nondeterminism'))
    const oneElement = [...weights]
    oneElement[7] += 1e-6
    expect(say(await linesFor(expected, model(oneElement, bias)))).toBe(false)
    expect(say(await linesFor(expected, model(jitter(weights), bias)))).toBe(false)
    const large = jitter(weights)
    large[3] = weights[3] + 0.5
    expect(say(await linesFor(expected, model(large, jitter(bias))))).toBe(false)
    const nan = jitter(weights)
    nan[1] = NaN
    expect(say(await linesFor(expected, model(nan, jitter(bias))))).toBe(false)
    const infinite = jitter(weights)
    infinite[1] = Infinity
    expect(say(await linesFor(expected, model(infinite, jitter(bias))))).toBe(false)
    const added = safetensorsFile([
      f32('fc.bias', jitter(bias)),
      f32('fc.weight', jitter(weights)),
      f32('x', [1])
    ])
    expect(say(await linesFor(expected, added))).toBe(false)
  })

  it('is not said for integer tensors or a single .npy array', async () => {
    const ints = (values: number[]) =>
      safetensorsFile(
        ['a', 'b'].map(name => ({
          name,
          dtype: 'I32',
          shape: [values.length],
          data: encode('i4', values)
        }))
      )
    const big = range(100, 1, 100000)
    const lines = await linesFor(ints(big), ints(big.map((v, i) => (i % 2 ? v + 1 : v))))
    expect(lines.some(line => line.includes('nondeterminism'))).toBe(false)
    const npy = await linesFor(
      npyFile('<f4', [400], encode('f4', weights)),
      npyFile('<f4', [400], encode('f4', jitter(weights))),
      'w.npy'
    )
    expect(npy.some(line => line.includes('nondeterminism'))).toBe(false)
  })
})
