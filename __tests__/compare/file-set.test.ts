import { describe, expect, it } from '@jest/globals'
import { fileSetDifference } from '../../src/compare/file-set.js'

describe('fileSetDifference: can these files be the declared outputs?', () => {
  it('accepts files equal to or under the declared outputs', () => {
    expect(
      fileSetDifference(['model.bin', 'tok/a.json', 'tok/b.json'], ['model.bin', 'tok'])
    ).toBeUndefined()
  })

  it('names an extra file and a missing output', () => {
    expect(
      fileSetDifference(['model.safetensors', 'README.md'], ['model.safetensors', 'config.json'])
    ).toEqual({
      unexpected: ['README.md'],
      missing: ['config.json']
    })
  })

  it('a name that only shares a prefix is not under the output', () => {
    expect(fileSetDifference(['tokenizer.json'], ['tok'])).toEqual({
      unexpected: ['tokenizer.json'],
      missing: ['tok']
    })
  })
})
