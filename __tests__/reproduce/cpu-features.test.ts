import { describe, expect, it } from '@jest/globals'
import {
  checkCpuFeatures,
  missingIsaFlags,
  parseCpuInfo
} from '../../src/reproduce/cpu-features.js'
import { cpuInfoText, EPYC_FLAGS, EPYC_NO_AVX512_FLAGS } from '../helpers/cpuinfo.js'

const NEHALEM_FLAGS =
  'fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 syscall nx lm pni ssse3 cx16 sse4_1 sse4_2 popcnt lahf_lm'

describe('parseCpuInfo', () => {
  it('reads the flags of every processor and the vendor', () => {
    const info = parseCpuInfo(cpuInfoText([EPYC_FLAGS, NEHALEM_FLAGS]))
    expect([...info.flags.keys()]).toEqual([0, 1])
    expect(info.flags.get(0)?.has('avx512f')).toBe(true)
    expect(info.flags.get(1)?.has('avx')).toBe(false)
    expect(info.flags.get(1)?.has('sse4_2')).toBe(true)
    expect(info.vendor).toBe('amd')
    expect(parseCpuInfo(cpuInfoText([NEHALEM_FLAGS], 'GenuineIntel')).vendor).toBe('intel')
    expect(parseCpuInfo(cpuInfoText([NEHALEM_FLAGS], 'HygonGenuine')).vendor).toBeUndefined()
  })

  it('reads the real /proc/cpuinfo of this machine', async () => {
    const { readProcCpuInfo } = await import('../../src/reproduce/cpu-features.js')
    const info = parseCpuInfo(await readProcCpuInfo())
    expect(info.flags.size).toBeGreaterThan(0)
    expect(info.flags.get(0)?.has('sse2')).toBe(true)
  })
})

describe('missingIsaFlags', () => {
  const epyc = parseCpuInfo(cpuInfoText([EPYC_FLAGS, EPYC_FLAGS]))
  const noAvx512 = parseCpuInfo(cpuInfoText([EPYC_NO_AVX512_FLAGS, EPYC_NO_AVX512_FLAGS]))

  it('finds nothing missing when every CPU of the set has the level', () => {
    for (const level of ['x86-64-v2', 'x86-64-v3', 'x86-64-v4'] as const)
      expect(missingIsaFlags(epyc, level, 2)).toEqual([])
    expect(missingIsaFlags(noAvx512, 'x86-64-v3', 2)).toEqual([])
  })

  it('names the missing flags in the level order', () => {
    expect(missingIsaFlags(noAvx512, 'x86-64-v4', 2)).toEqual([
      'avx512f',
      'avx512bw',
      'avx512cd',
      'avx512dq',
      'avx512vl'
    ])
    const nehalem = parseCpuInfo(cpuInfoText([NEHALEM_FLAGS]))
    expect(missingIsaFlags(nehalem, 'x86-64-v2', 1)).toEqual([])
    expect(missingIsaFlags(nehalem, 'x86-64-v3', 1)).toEqual([
      'avx',
      'avx2',
      'bmi1',
      'bmi2',
      'f16c',
      'fma',
      'abm',
      'movbe',
      'xsave'
    ])
  })

  it('checks only CPUs 0 to cpus-1, and each of them', () => {
    const mixed = parseCpuInfo(cpuInfoText([EPYC_FLAGS, EPYC_NO_AVX512_FLAGS]))
    expect(missingIsaFlags(mixed, 'x86-64-v4', 1)).toEqual([])
    expect(missingIsaFlags(mixed, 'x86-64-v4', 2)).toContain('avx512f')
    expect(missingIsaFlags(epyc, 'x86-64-v2', 3)).toEqual([
      'cx16',
      'lahf_lm',
      'popcnt',
      'sse4_1',
      'sse4_2',
      'ssse3'
    ])
  })
})

describe('checkCpuFeatures', () => {
  it('is unverifiable naming the missing flags and the fix', async () => {
    const read = async () => cpuInfoText([EPYC_NO_AVX512_FLAGS, EPYC_NO_AVX512_FLAGS])
    await expect(checkCpuFeatures('x86-64-v4', 2, read)).rejects.toMatchObject({
      verdict: 'unverifiable',
      message:
        "predicate.build.isa: the ledger pins x86-64-v4 but this runner's CPU lacks avx512f avx512bw avx512cd avx512dq avx512vl (/proc/cpuinfo, CPUs 0-1): run on a runner whose CPU has x86-64-v4"
    })
    await expect(checkCpuFeatures('x86-64-v3', 2, read)).resolves.toBeUndefined()
  })

  it('is unverifiable when /proc/cpuinfo cannot be read', async () => {
    const read = () => Promise.reject(new Error('ENOENT: no such file'))
    await expect(checkCpuFeatures('x86-64-v2', 1, read)).rejects.toMatchObject({
      verdict: 'unverifiable',
      message: expect.stringContaining('/proc/cpuinfo cannot be read')
    })
  })
})
