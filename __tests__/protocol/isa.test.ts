import { describe, expect, it } from '@jest/globals'
import { normalizedEnv, RESERVED_ENV } from '../../src/protocol/contract-env.js'
import {
  compareIsaLevels,
  isaCpuFlags,
  isaProfileEnv,
  ISA_LEVELS,
  ISA_PROFILE_VARIABLES
} from '../../src/protocol/isa.js'
import { isaVectors } from '../helpers/ledger.js'

const vectors = isaVectors

describe('isa-profiles.json', () => {
  it('has exactly our levels', () => {
    expect(Object.keys(vectors)).toEqual([...ISA_LEVELS])
  })

  it.each(ISA_LEVELS.map(level => [level]))(
    '%s: the profile is the vector, key order included',
    level => {
      const env = isaProfileEnv(level)
      expect(Object.entries(env)).toEqual(Object.entries(vectors[level]))
      expect(Object.keys(env)).toEqual(ISA_PROFILE_VARIABLES)
    }
  )
})

describe('isaCpuFlags', () => {
  it('is the table of PROTOCOL.md 4.1, each level including those below', () => {
    expect(isaCpuFlags('x86-64-v2')).toEqual([
      'cx16',
      'lahf_lm',
      'popcnt',
      'sse4_1',
      'sse4_2',
      'ssse3'
    ])
    expect(isaCpuFlags('x86-64-v3')).toEqual([
      ...isaCpuFlags('x86-64-v2'),
      ...['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave']
    ])
    expect(isaCpuFlags('x86-64-v4')).toEqual([
      ...isaCpuFlags('x86-64-v3'),
      ...['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl']
    ])
  })

  it('orders the levels', () => {
    expect(compareIsaLevels('x86-64-v2', 'x86-64-v3')).toBeLessThan(0)
    expect(compareIsaLevels('x86-64-v4', 'x86-64-v3')).toBeGreaterThan(0)
    expect(compareIsaLevels('x86-64-v3', 'x86-64-v3')).toBe(0)
  })
})

describe('the contract environment', () => {
  it('is section 4 for an unpinned build, then the profile when pinned', () => {
    const unpinned = normalizedEnv({ sourceDateEpoch: 5, cpus: 3 })
    expect(unpinned).toEqual({
      SOURCE_DATE_EPOCH: '5',
      TZ: 'UTC',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      PYTHONHASHSEED: '0',
      OMP_NUM_THREADS: '3',
      MKL_NUM_THREADS: '3',
      OPENBLAS_NUM_THREADS: '3',
      CUBLAS_WORKSPACE_CONFIG: ':4096:8',
      HF_HUB_OFFLINE: '1',
      HF_DATASETS_OFFLINE: '1',
      TRANSFORMERS_OFFLINE: '1',
      PIP_NO_INDEX: '1',
      WANDB_MODE: 'disabled',
      HOME: '/tmp'
    })
    for (const level of ISA_LEVELS)
      expect(normalizedEnv({ sourceDateEpoch: 5, cpus: 3, isa: level })).toEqual({
        ...unpinned,
        ...vectors[level]
      })
  })

  it('reserves every variable it sets, the profile and the segment variables', () => {
    const everything = [
      ...Object.keys(normalizedEnv({ sourceDateEpoch: 0, cpus: 1, isa: 'x86-64-v2' })),
      'VERIFY_MODEL_SEGMENT',
      'VERIFY_MODEL_SEGMENTS'
    ]
    expect([...RESERVED_ENV].sort()).toEqual(everything.sort())
  })
})
