import { describe, expect, it } from '@jest/globals'
import {
  drawSegments,
  escapeChances,
  escapeProbability,
  formatPercent,
  parseSegmentSelection,
  resolveSelection
} from '../../src/segments/selection.js'

/** C(n, k) exactly, with BigInt. */
function binomial(n: number, k: number): bigint {
  if (k < 0 || k > n) return 0n
  let result = 1n
  for (let i = 0; i < k; i++) result = (result * BigInt(n - i)) / BigInt(i + 1)
  return result
}

/** C(n − m, k) / C(n, k) as a float, from the exact integers (scaled to keep 15 digits). */
function exactEscape(n: number, m: number, k: number): number {
  const scale = 10n ** 18n
  return Number((binomial(n - m, k) * scale) / binomial(n, k)) / 1e18
}

describe('escapeProbability: C(N−m, k) / C(N, k)', () => {
  it('matches hand-computed values', () => {
    // C(90,22)/C(100,22): a tenth forged, 22 re-runs (the 1 − 0.9^22 ≈ 90 % is the
    // with-replacement bound; drawing without replacement catches more).
    expect(escapeProbability(100, 10, 22)).toBeCloseTo(0.0726917082, 9)
    expect(escapeProbability(100, 10, 44)).toBeCloseTo(0.0020569853, 9)
    expect(escapeProbability(100, 1, 22)).toBeCloseTo(0.78, 12)
    expect(escapeProbability(8, 1, 3)).toBeCloseTo(5 / 8, 12)
    expect(escapeProbability(8, 1, 8)).toBe(0)
    expect(escapeProbability(8, 1, 0)).toBe(1)
  })

  it.each([
    [10, 1, 3],
    [50, 5, 7],
    [1000, 100, 22],
    [100000, 10000, 44],
    [100000, 1, 100]
  ])('agrees with the exact BigInt ratio for N=%i m=%i k=%i', (n, m, k) => {
    expect(escapeProbability(n, m, k)).toBeCloseTo(exactEscape(n, m, k), 12)
  })

  it('reports m = 1 and m = ⌈N/10⌉', () => {
    expect(escapeChances(8, 3)).toEqual([
      { forged: 1, probability: 0.625 },
      { forged: 1, probability: 0.625 }
    ])
    expect(escapeChances(100, 22).map(c => c.forged)).toEqual([1, 10])
    expect(escapeChances(15, 2).map(c => c.forged)).toEqual([1, 2])
  })

  it('formats percentages for reports', () => {
    expect(formatPercent(0.625)).toBe('62.5 %')
    expect(formatPercent(0.0726917)).toBe('7.27 %')
    expect(formatPercent(0)).toBe('0 %')
    expect(formatPercent(1e-9)).toBe('< 0.01 %')
  })
})

describe('drawSegments', () => {
  it('draws k distinct sorted indices in 1..N', () => {
    for (let trial = 0; trial < 200; trial++) {
      const drawn = drawSegments(20, 7)
      expect(new Set(drawn).size).toBe(7)
      expect(drawn).toEqual([...drawn].sort((a, b) => a - b))
      expect(drawn.every(i => i >= 1 && i <= 20)).toBe(true)
    }
    expect(drawSegments(5, 5)).toEqual([1, 2, 3, 4, 5])
  })

  it('uses the injected generator (k calls) and is uniform over k-subsets', () => {
    // Floyd's algorithm enumerates every choice sequence: each 2-subset of 1..4 exactly once.
    const counts = new Map<string, number>()
    for (let a = 0; a < 3; a++)
      for (let b = 0; b < 4; b++) {
        const answers = [a, b]
        const drawn = drawSegments(4, 2, max => {
          const next = answers.shift() as number
          expect(next).toBeLessThan(max)
          return next
        })
        counts.set(drawn.join(','), (counts.get(drawn.join(',')) ?? 0) + 1)
      }
    expect([...counts.keys()].sort()).toEqual(['1,2', '1,3', '1,4', '2,3', '2,4', '3,4'])
    expect([...counts.values()].every(n => n === 2)).toBe(true)
  })

  it('refuses a generator answer out of range', () => {
    expect(() => drawSegments(4, 2, () => 7)).toThrow('outside')
  })
})

describe('segment selection', () => {
  it('parses a count, all, and index lists', () => {
    expect(parseSegmentSelection('3')).toEqual({ kind: 'random', count: 3 })
    expect(parseSegmentSelection(' all ')).toEqual({ kind: 'all' })
    expect(parseSegmentSelection('5,2, 7')).toEqual({ kind: 'indices', indices: [2, 5, 7] })
    expect(parseSegmentSelection('7,')).toEqual({ kind: 'indices', indices: [7] })
  })

  it.each(['', '0', '-1', 'two', '1,,2', '2,2', '1.5', ','])('rejects %j', text => {
    expect(() => parseSegmentSelection(text)).toThrow()
  })

  it('resolves against the build', () => {
    expect(resolveSelection({ kind: 'all' }, 3)).toEqual([1, 2, 3])
    expect(resolveSelection({ kind: 'indices', indices: [2, 3] }, 3)).toEqual([2, 3])
    expect(() => resolveSelection({ kind: 'indices', indices: [4] }, 3)).toThrow(
      'segment 4 does not exist: the build has 3 segments'
    )
    expect(() => resolveSelection({ kind: 'random', count: 4 }, 3)).toThrow('at most 3')
    expect(resolveSelection({ kind: 'random', count: 2 }, 3, () => 0)).toEqual([1, 3])
  })
})
