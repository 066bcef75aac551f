// `npm run fuzz`: the property suites of __tests__/hostile as a long campaign. FUZZ_RUNS cases in
// all (default 200000) from a fresh random FUZZ_SEED, printed first so that a failure replays with
// `FUZZ_SEED=<seed> FUZZ_RUNS=<runs> npm run fuzz`. Ends with the counts of every suite.
import { spawnSync } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const runs = process.env.FUZZ_RUNS || '200000'
const seed = process.env.FUZZ_SEED || String(randomInt(2 ** 31 - 1))
const countsDir = path.join(os.tmpdir(), 'verify-model-fuzz')
rmSync(countsDir, { recursive: true, force: true })

console.log(`fuzz: FUZZ_RUNS=${runs} FUZZ_SEED=${seed}`)
const jest = spawnSync(
  'npx',
  ['jest', '__tests__/hostile', '--testTimeout', String(24 * 3600 * 1000)],
  {
    stdio: 'inherit',
    env: {
      ...process.env,
      FUZZ_RUNS: runs,
      FUZZ_SEED: seed,
      NODE_OPTIONS: '--experimental-vm-modules'
    }
  }
)

console.log(`\nfuzz: FUZZ_RUNS=${runs} FUZZ_SEED=${seed}; counts from ${countsDir}:`)
for (const file of readdirSync(countsDir).sort())
  console.log(`  ${JSON.stringify(JSON.parse(readFileSync(path.join(countsDir, file), 'utf8')))}`)
process.exit(jest.status ?? 1)
