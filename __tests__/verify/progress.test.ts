import { describe, expect, it } from '@jest/globals'
import { hashProgressLines } from '../../src/verify/progress.js'

const MIB = 2 ** 20

describe('hashProgressLines', () => {
  it('says nothing for a tree hashed within the interval', () => {
    let now = 0
    const line = hashProgressLines(2000, () => now)
    const seen = [0, 0, 0].map(() =>
      line('outputs', { bytesDone: 0, bytesTotal: 0, filesDone: 0, filesTotal: 1 })
    )
    now = 100
    seen.push(line('outputs', { bytesDone: 10, bytesTotal: 10, filesDone: 1, filesTotal: 1 }))
    expect(seen).toEqual([undefined, undefined, undefined, undefined])
  })

  it('prints every interval and a final line with the time taken', () => {
    let now = 0
    const line = hashProgressLines(2000, () => now)
    const at = (ms: number, done: number) => {
      now = ms
      return line('model', {
        bytesDone: done * MIB,
        bytesTotal: 512 * MIB,
        filesDone: done === 512 ? 4 : 1,
        filesTotal: 4
      })
    }
    expect([
      at(0, 0),
      at(1000, 100),
      at(2500, 200),
      at(3000, 250),
      at(4600, 400),
      at(5000, 512)
    ]).toEqual([
      undefined,
      undefined,
      'hashing model: 200 MiB of 512 MiB',
      undefined,
      'hashing model: 400 MiB of 512 MiB',
      'hashing model: 512 MiB of 512 MiB in 5.0 s'
    ])
  })
})
