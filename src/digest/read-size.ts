import fs from 'node:fs'
import path from 'node:path'

/** The data caches of one CPU core, in bytes, as Linux reports them (undefined: not reported). */
export interface CpuCaches {
  l1d?: number
  l2?: number
  l3?: number
}

const SYSFS_CACHES = '/sys/devices/system/cpu/cpu0/cache'

/** Reads `index*\/{level,type,size}` under `dir`; an absent or unreadable directory gives `{}`. */
export function cpuCaches(dir = SYSFS_CACHES): CpuCaches {
  const caches: CpuCaches = {}
  let entries: string[]
  try {
    entries = fs.readdirSync(dir).filter(name => /^index\d+$/.test(name))
  } catch {
    return caches
  }
  for (const entry of entries) {
    const read = (file: string) => {
      try {
        return fs.readFileSync(path.join(dir, entry, file), 'utf8').trim()
      } catch {
        return ''
      }
    }
    if (read('type') === 'Instruction') continue
    const size = parseCacheSize(read('size'))
    const level = read('level')
    if (size === undefined) continue
    if (level === '1') caches.l1d = size
    else if (level === '2') caches.l2 = size
    else if (level === '3') caches.l3 = size
  }
  return caches
}

/** `32K`, `1024K`, `2M` (sysfs units are powers of 1024). */
export function parseCacheSize(text: string): number | undefined {
  const match = /^(\d+)([KMG]?)$/i.exec(text)
  if (!match) return undefined
  const unit = { '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 }[match[2].toUpperCase() as '' | 'K']
  return Number(match[1]) * unit
}

export const MIN_READ_SIZE = 64 << 10
export const MAX_READ_SIZE = 1 << 20
/** When the L2 size is not known: right for L2 caches of 512 KiB and up. */
export const FALLBACK_READ_SIZE = 256 << 10

/**
 * Bytes per read: the largest power of two up to half the L2 cache, within 64 KiB-1 MiB. A read
 * is copied into the buffer by the kernel and then hashed on the same core, so the buffer must
 * still be in L2 when SHA-256 reads it; fewer, bigger reads cost fewer system calls (and, on
 * the calling thread, fewer hops to the libuv pool). docs/performance.md has the measurements.
 */
export function readSizeFor(caches: CpuCaches): number {
  if (caches.l2 === undefined || caches.l2 <= 0) return FALLBACK_READ_SIZE
  let size = MIN_READ_SIZE
  while (size * 2 <= caches.l2 / 2 && size * 2 <= MAX_READ_SIZE) size *= 2
  return size
}

/** Overrides the read size (bytes), for measuring (`npm run bench -- --read-sizes`). */
export const READ_SIZE_VARIABLE = 'VERIFY_MODEL_READ_SIZE'

/**
 * `readSizeFor(cpuCaches())`, or the size `VERIFY_MODEL_READ_SIZE` gives: a power of two from
 * 4 KiB to 16 MiB, anything else is an error naming the variable.
 */
export function defaultReadSize(env: NodeJS.ProcessEnv = process.env): number {
  const override = env[READ_SIZE_VARIABLE]
  if (override === undefined || override === '') return readSizeFor(cpuCaches())
  const size = /^\d+$/.test(override) ? Number(override) : NaN
  if (!(size >= 4096 && size <= 16 << 20 && (size & (size - 1)) === 0))
    throw new Error(
      `${READ_SIZE_VARIABLE}=${override}: give the read size in bytes, a power of two from 4096 to 16777216, or unset it`
    )
  return size
}
