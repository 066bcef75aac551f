import { InputError } from './inputs.js'

// Limits that describe the runner rather than the verification, so they come from the runner's
// environment instead of the workflow's inputs. Each has a default when unset.

export interface RunnerLimits {
  /** The build container's memory limit. */
  memoryBytes?: number
  /** The most a build may leave in /out. */
  maxOutputBytes?: number
  /** The bound on each Actions cache call (restore, save). */
  cacheTimeoutMs?: number
}

const LIMIT_VARIABLES = {
  memoryBytes: 'VERIFY_MODEL_MEMORY_LIMIT',
  maxOutputBytes: 'VERIFY_MODEL_MAX_OUTPUT',
  cacheTimeoutMs: 'VERIFY_MODEL_CACHE_TIMEOUT_MS'
} as const

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }

export function runnerLimits(env: NodeJS.ProcessEnv): RunnerLimits {
  const limits: RunnerLimits = {}
  const memory = env[LIMIT_VARIABLES.memoryBytes]
  if (memory) limits.memoryBytes = size(LIMIT_VARIABLES.memoryBytes, memory)
  const output = env[LIMIT_VARIABLES.maxOutputBytes]
  if (output) limits.maxOutputBytes = size(LIMIT_VARIABLES.maxOutputBytes, output)
  const timeout = env[LIMIT_VARIABLES.cacheTimeoutMs]
  if (timeout) {
    if (!/^\d+$/.test(timeout) || Number(timeout) < 1)
      throw new InputError(
        `${LIMIT_VARIABLES.cacheTimeoutMs} must be a whole number of milliseconds ≥ 1; got '${timeout}'`
      )
    limits.cacheTimeoutMs = Number(timeout)
  }
  return limits
}

/** Bytes as docker writes them: a whole number with an optional k, m, g or t (powers of 1024). */
function size(name: string, text: string): number {
  const match = /^(\d+)([kmgt]?)$/i.exec(text.trim())
  const bytes = match ? Number(match[1]) * UNITS[match[2].toLowerCase()] : NaN
  if (!Number.isSafeInteger(bytes) || bytes < 1)
    throw new InputError(`${name} must be a size like 512m or 8g; got '${text}'`)
  return bytes
}
