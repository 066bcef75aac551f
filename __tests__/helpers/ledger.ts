import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { Ledger } from '../../src/protocol/ledger.js'
import { vectorsDir } from './paths.js'

export const SAMPLE_DIGEST = 'ab'.repeat(32)
export const SAMPLE_REFERENCE = `ghcr.io/acme/trainer@sha256:${SAMPLE_DIGEST}`

/** A validated ledger for argv builders (nothing here is fetched or run). */
export function sampleLedger(build: Partial<Ledger['build']> = {}): Ledger {
  return {
    source: { uri: 'git+https://github.com/acme/tiny-model', gitCommit: 'cd'.repeat(20) },
    dependencies: [],
    environment: {
      uri: 'oci://ghcr.io/acme/trainer',
      repository: 'ghcr.io/acme/trainer',
      sha256: SAMPLE_DIGEST,
      reference: SAMPLE_REFERENCE,
      platform: 'linux/amd64'
    },
    build: {
      command: ['python3', 'train.py', '--out', '/out'],
      env: {},
      sourceDateEpoch: 1700000000,
      workdir: '.',
      network: 'none',
      timeoutSeconds: 3600,
      cpus: 2,
      gpus: 'none',
      ...build
    }
  }
}

/** `isa-profiles.json`'s variables per level. */
export const isaVectors = (
  JSON.parse(readFileSync(path.join(vectorsDir, 'isa-profiles.json'), 'utf8')) as {
    levels: Record<string, Record<string, string>>
  }
).levels
