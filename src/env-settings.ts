import { invalid } from './errors.js'

// Settings that describe the machine rather than the verification (deadlines, test-only
// exemptions), read from the environment by the module they govern, for the action and the CLI
// alike. A malformed value is `invalid`, naming the variable.

/** A whole number of milliseconds ≥ 1, or `fallback` when unset. */
export function envMilliseconds(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name]?.trim()
  if (!text) return fallback
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text)))
    throw invalid(`${name} must be a whole number of milliseconds ≥ 1; got '${text}'`)
  return Number(text)
}

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }

/** A byte count like `64k` or `1m` (powers of 1024; 0 allowed), or `fallback` when unset. */
export function envBytes(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name]?.trim()
  if (!text) return fallback
  const match = /^(\d+)([kmg]?)$/i.exec(text)
  const bytes = match ? Number(match[1]) * UNITS[match[2].toLowerCase()] : NaN
  if (!Number.isSafeInteger(bytes))
    throw invalid(`${name} must be a size like 64k or 1m; got '${text}'`)
  return bytes
}

/** `true` or `false` (unset is false). */
export function envFlag(env: NodeJS.ProcessEnv, name: string): boolean {
  const text = env[name]?.trim()
  if (!text || text === 'false') return false
  if (text === 'true') return true
  throw invalid(`${name} must be true or false; got '${text}'`)
}
