import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

// How much the property suites run. CI: a fixed seed and FUZZ_RUNS cases in all (default 3000),
// shared between the properties by weight. `npm run fuzz` sets a large FUZZ_RUNS and a fresh
// FUZZ_SEED, and prints the seed so a failure can be replayed.

const DEFAULT_TOTAL_RUNS = 3000
const DEFAULT_SEED = 20251127

export const fuzzSeed = integerFromEnv('FUZZ_SEED', DEFAULT_SEED)
const totalRuns = integerFromEnv('FUZZ_RUNS', DEFAULT_TOTAL_RUNS)

/** This property's share of the total, given as a fraction of FUZZ_RUNS. */
export function runsFor(share: number): number {
  return Math.max(1, Math.round(totalRuns * share))
}

/** fast-check parameters for one property: the seed, its runs, and no time-based shrink limit. */
export function fuzzParameters(share: number): { seed: number; numRuns: number } {
  return { seed: fuzzSeed, numRuns: runsFor(share) }
}

/**
 * Prints one summary line and writes it as JSON to `<tmpdir>/verify-model-fuzz/<suite>.json`,
 * where `npm run fuzz` (and the closing note) read the counts.
 */
export function recordCounts(suite: string, counts: Record<string, number>): void {
  const summary = { suite, seed: fuzzSeed, ...counts }
  const dir = path.join(os.tmpdir(), 'verify-model-fuzz')
  mkdirSync(dir, { recursive: true })
  writeFileSync(path.join(dir, `${suite}.json`), `${JSON.stringify(summary, null, 2)}\n`)
  console.log(
    `${suite}: seed ${fuzzSeed}, ` +
      Object.entries(counts)
        .map(([name, value]) => `${name} ${value}`)
        .join(', ')
  )
}

function integerFromEnv(name: string, fallback: number): number {
  const text = process.env[name]
  if (text === undefined || text === '') return fallback
  const value = Number(text)
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got '${text}'`)
  return value
}
