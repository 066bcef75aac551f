// Which segments a verifier re-runs (PROTOCOL.md section 9), and what that leaves to chance.
import { randomInt as cryptoRandomInt } from 'node:crypto'

/** `k` random segments, every segment, or the indices a matrix job was given. */
export type SegmentSelection =
  { kind: 'random'; count: number } | { kind: 'all' } | { kind: 'indices'; indices: number[] }

/** A uniform integer in `[0, maxExclusive)` from a cryptographic generator (injectable for tests). */
export type RandomInt = (maxExclusive: number) => number

export const cryptoRandom: RandomInt = maxExclusive => cryptoRandomInt(maxExclusive)

/**
 * `K` (a number of random segments), `all`, or a comma list of 1-based indices. A list of one
 * index ends with a comma (`7,`), so that it is not read as a count.
 */
export function parseSegmentSelection(text: string): SegmentSelection {
  const value = text.trim()
  if (value === 'all') return { kind: 'all' }
  if (/^\d+$/.test(value)) return { kind: 'random', count: positive(value, value) }
  const parts = value.split(',').map(part => part.trim())
  if (parts.at(-1) === '' && parts.length > 1) parts.pop()
  if (parts.length === 0 || parts.some(part => !/^\d+$/.test(part)))
    throw new Error(
      `expected a number of segments to draw (e.g. 3), all, or a comma list of segment indices (e.g. 2,5,7, or 7, for one); got '${text}'`
    )
  const indices = parts.map(part => positive(part, text))
  if (new Set(indices).size !== indices.length)
    throw new Error(`segment indices must be distinct; got '${text}'`)
  return { kind: 'indices', indices: [...indices].sort((a, b) => a - b) }
}

function positive(part: string, text: string): number {
  const n = Number(part)
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`expected numbers from 1 up; got '${text}'`)
  return n
}

/** The sorted indices to re-run for a build of `segments` runs; throws naming what does not fit. */
export function resolveSelection(
  selection: SegmentSelection,
  segments: number,
  random: RandomInt = cryptoRandom
): number[] {
  if (selection.kind === 'all') return Array.from({ length: segments }, (_, i) => i + 1)
  if (selection.kind === 'indices') {
    const outside = selection.indices.filter(i => i > segments)
    if (outside.length > 0)
      throw new Error(
        `segment ${outside.join(', ')} does not exist: the build has ${segments} segments (1 to ${segments})`
      )
    return selection.indices
  }
  if (selection.count > segments)
    throw new Error(
      `${selection.count} segments asked for, but the build has ${segments}: give at most ${segments} (or all)`
    )
  return drawSegments(segments, selection.count, random)
}

/**
 * `k` distinct indices drawn uniformly from `1..n` (Floyd's algorithm: every k-subset equally
 * likely, k calls to the generator), sorted.
 */
export function drawSegments(n: number, k: number, random: RandomInt = cryptoRandom): number[] {
  if (!Number.isSafeInteger(k) || k < 0 || k > n) throw new Error(`cannot draw ${k} of ${n}`)
  const chosen = new Set<number>()
  for (let j = n - k + 1; j <= n; j++) {
    const t = random(j) + 1
    if (!Number.isSafeInteger(t) || t < 1 || t > j)
      throw new Error(`the random generator returned ${t - 1}, outside 0..${j - 1}`)
    chosen.add(chosen.has(t) ? j : t)
  }
  return [...chosen].sort((a, b) => a - b)
}

/**
 * The chance that a transcript with `forged` forged segments escapes `k` distinct random
 * re-runs of `n`: C(n − m, k) / C(n, k) = Π_{j<k} (n − m − j) / (n − j), each factor in [0, 1].
 */
export function escapeProbability(n: number, forged: number, k: number): number {
  if (forged + k > n) return 0
  let p = 1
  for (let j = 0; j < k; j++) p *= (n - forged - j) / (n - j)
  return p
}

export interface EscapeChance {
  /** Forged segments. */
  forged: number
  probability: number
}

/** The two chances a report gives: one forged segment, and a tenth of them (⌈N/10⌉, at least 1). */
export function escapeChances(n: number, k: number): EscapeChance[] {
  const tenth = Math.max(1, Math.ceil(n / 10))
  return [1, tenth].map(forged => ({
    forged,
    probability: escapeProbability(n, forged, k)
  }))
}

/** `0.625`, `7.27e-2` → `62.5 %`, `7.27 %`, `< 0.01 %`: for reports. */
export function formatPercent(probability: number): string {
  if (probability === 0) return '0 %'
  const percent = probability * 100
  if (percent < 0.01) return '< 0.01 %'
  return `${Number(percent.toPrecision(3))} %`
}
