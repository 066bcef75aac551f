import { afterAll, describe, expect, it } from '@jest/globals'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  cpuCaches,
  defaultReadSize,
  FALLBACK_READ_SIZE,
  parseCacheSize,
  readSizeFor
} from '../../src/digest/read-size.js'

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'read-size-'))
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }))

/** A sysfs cache directory as Linux writes it: index<N>/{level,type,size}. */
function fakeSysfs(entries: [level: string, type: string, size: string][]): string {
  const dir = fs.mkdtempSync(path.join(scratch, 'cache-'))
  entries.forEach(([level, type, size], i) => {
    fs.mkdirSync(path.join(dir, `index${i}`))
    fs.writeFileSync(path.join(dir, `index${i}`, 'level'), `${level}\n`)
    fs.writeFileSync(path.join(dir, `index${i}`, 'type'), `${type}\n`)
    fs.writeFileSync(path.join(dir, `index${i}`, 'size'), `${size}\n`)
  })
  return dir
}

describe('the CPU caches', () => {
  it('are read from sysfs: data and unified caches, instruction caches skipped', () => {
    const dir = fakeSysfs([
      ['1', 'Data', '32K'],
      ['1', 'Instruction', '64K'],
      ['2', 'Unified', '1024K'],
      ['3', 'Unified', '32768K']
    ])
    expect(cpuCaches(dir)).toEqual({ l1d: 32 << 10, l2: 1 << 20, l3: 32 << 20 })
  })

  it('are unknown where sysfs says nothing or is absent', () => {
    expect(cpuCaches(path.join(scratch, 'absent'))).toEqual({})
    expect(cpuCaches(fakeSysfs([['2', 'Unified', 'lots']]))).toEqual({})
  })

  it.each([
    ['32K', 32 << 10],
    ['2M', 2 << 20],
    ['1048576', 1 << 20],
    ['', undefined],
    ['1.5M', undefined]
  ])('size %j is %j bytes', (text, bytes) => {
    expect(parseCacheSize(text)).toBe(bytes)
  })
})

describe('the read size', () => {
  it.each([
    [256 << 10, 128 << 10],
    [512 << 10, 256 << 10],
    [1 << 20, 512 << 10], // this project's AMD EPYC runner
    [1280 << 10, 512 << 10],
    [2 << 20, 1 << 20],
    [32 << 20, 1 << 20],
    [64 << 10, 64 << 10]
  ])('an L2 of %i bytes reads %i bytes at a time', (l2, readSize) => {
    expect(readSizeFor({ l2 })).toBe(readSize)
  })

  it('falls back when the L2 size is unknown', () => {
    expect(readSizeFor({})).toBe(FALLBACK_READ_SIZE)
  })

  it('VERIFY_MODEL_READ_SIZE overrides it, and anything but a power of two is refused', () => {
    expect(defaultReadSize({ VERIFY_MODEL_READ_SIZE: '65536' })).toBe(65536)
    expect(defaultReadSize({ VERIFY_MODEL_READ_SIZE: '' })).toBe(readSizeFor(cpuCaches()))
    for (const bad of ['100000', '1M', '2048', String(32 << 20)])
      expect(() => defaultReadSize({ VERIFY_MODEL_READ_SIZE: bad })).toThrow(
        `VERIFY_MODEL_READ_SIZE=${bad}: give the read size in bytes, a power of two from 4096 to 16777216, or unset it`
      )
  })
})
