// What one build may take from the runner: memory, and bytes left in /out.
import { lstat, readdir } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

const GIB = 2 ** 30
const MIN_MEMORY_BYTES = 512 * 2 ** 20

/** Past this, a build's /out is a runaway, not a model: the build failed. */
export const DEFAULT_MAX_OUTPUT_BYTES = 64 * GIB

/**
 * The build container's memory limit when the caller gives none: what this process may use
 * (the machine's memory, or its cgroup limit when lower) minus a margin for the verifier and the
 * system, 1 GiB or an eighth, whichever is more.
 */
export function defaultMemoryBytes(
  total = os.totalmem(),
  constrained: number | undefined = process.constrainedMemory?.()
): number {
  const available = constrained && constrained > 0 ? Math.min(total, constrained) : total
  return Math.max(MIN_MEMORY_BYTES, available - Math.max(GIB, available / 8))
}

/** `8 GiB`, `512 MiB`, `1.5 KiB`: for messages. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`
}

/** `bytes` in GiB with two decimals and no unit (`0.50`): progress lines keep one unit. */
export function gibibytes(bytes: number): string {
  return (bytes / GIB).toFixed(2)
}

const LSTAT_BATCH = 64

/**
 * The bytes of the regular files under `dir`, counting stops once past `limit` (the answer is
 * then only known to exceed it). Links are not followed; other kinds of entry count nothing.
 */
export async function bytesUnder(dir: string, limit: number): Promise<number> {
  let total = 0
  const pending = [dir]
  for (let next = pending.pop(); next !== undefined && total <= limit; next = pending.pop()) {
    const files: string[] = []
    for (const entry of await readdir(next, { withFileTypes: true })) {
      const child = path.join(next, entry.name)
      if (entry.isDirectory()) pending.push(child)
      else if (entry.isFile()) files.push(child)
    }
    // Many lstat calls in flight at once: one at a time, a directory of 200,000 files takes minutes.
    for (let i = 0; i < files.length && total <= limit; i += LSTAT_BATCH) {
      const sizes = await Promise.all(files.slice(i, i + LSTAT_BATCH).map(file => lstat(file)))
      for (const stats of sizes) total += stats.size
    }
  }
  return total
}
