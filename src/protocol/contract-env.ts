// The environment of the container contract (PROTOCOL.md sections 4, 4.1 and 9): what every
// build gets before `build.env`, and so the names `build.env` may never set.
import { ISA_PROFILE_VARIABLES, isaProfileEnv, type IsaLevel } from './isa.js'

export interface ContractEnvInput {
  sourceDateEpoch: number
  cpus: number
  isa?: IsaLevel
}

/** Section 4's variables, then the ISA profile of 4.1 when the build pins a level. */
export function normalizedEnv(build: ContractEnvInput): Record<string, string> {
  const threads = String(build.cpus)
  return {
    SOURCE_DATE_EPOCH: String(build.sourceDateEpoch),
    TZ: 'UTC',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    PYTHONHASHSEED: '0',
    OMP_NUM_THREADS: threads,
    MKL_NUM_THREADS: threads,
    OPENBLAS_NUM_THREADS: threads,
    CUBLAS_WORKSPACE_CONFIG: ':4096:8',
    HF_HUB_OFFLINE: '1',
    HF_DATASETS_OFFLINE: '1',
    TRANSFORMERS_OFFLINE: '1',
    PIP_NO_INDEX: '1',
    WANDB_MODE: 'disabled',
    HOME: '/tmp',
    ...(build.isa === undefined ? {} : isaProfileEnv(build.isa))
  }
}

/** Section 9: which run of a segmented build this is, and how many there are. */
export const SEGMENT_ENV: readonly string[] = ['VERIFY_MODEL_SEGMENT', 'VERIFY_MODEL_SEGMENTS']

/** Every name the contract sets on some build: a ledger's `build.env` setting one is invalid. */
export const RESERVED_ENV: readonly string[] = [
  ...Object.keys(normalizedEnv({ sourceDateEpoch: 0, cpus: 1, isa: 'x86-64-v3' })),
  ...SEGMENT_ENV
]

/** What the ledger sets instead, for the error message. */
export function reservedEnvHint(name: string): string {
  if (name === 'SOURCE_DATE_EPOCH') return 'build.sourceDateEpoch sets it'
  if (name.endsWith('_NUM_THREADS')) return 'build.cpus sets the thread count'
  if (ISA_PROFILE_VARIABLES.includes(name)) return 'build.isa sets the ISA profile'
  if (SEGMENT_ENV.includes(name)) return 'build.segments sets it for each run'
  return 'the container contract fixes it'
}
