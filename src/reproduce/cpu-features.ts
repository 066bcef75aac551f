// PROTOCOL.md 4.1: before a build pinned to `build.isa`, every CPU of the container's CPU set
// must have the level's /proc/cpuinfo flags.
import { readFile } from 'node:fs/promises'
import { unverifiable } from '../errors.js'
import { isaCpuFlags, type IsaLevel } from '../protocol/isa.js'
import type { CpuVendor } from './emulation.js'

export interface CpuInfo {
  /** The `flags` of each `processor`, by its number. */
  flags: Map<number, Set<string>>
  vendor?: CpuVendor
}

/** Reads the kernel's CPU report (injected so tests can give another CPU's). */
export type CpuInfoReader = () => Promise<string>

export const readProcCpuInfo: CpuInfoReader = () => readFile('/proc/cpuinfo', 'utf8')

const VENDORS: Record<string, CpuVendor> = { GenuineIntel: 'intel', AuthenticAMD: 'amd' }

/** Parses /proc/cpuinfo text (x86: one `key : value` block per processor). Pure. */
export function parseCpuInfo(text: string): CpuInfo {
  const flags = new Map<number, Set<string>>()
  let vendor: CpuVendor | undefined
  for (const block of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>()
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':')
      if (colon > 0) fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim())
    }
    const processor = fields.get('processor')
    if (processor === undefined || !/^\d+$/.test(processor)) continue
    flags.set(Number(processor), new Set((fields.get('flags') ?? '').split(/\s+/).filter(Boolean)))
    vendor ??= VENDORS[fields.get('vendor_id') ?? '']
  }
  return { flags, ...(vendor === undefined ? {} : { vendor }) }
}

/**
 * The flags of the level that CPUs 0 to `cpus - 1` (the `--cpuset-cpus` of the build) lack,
 * in the level's order; a CPU missing from the report lacks them all. Pure.
 */
export function missingIsaFlags(info: CpuInfo, level: IsaLevel, cpus: number): string[] {
  const needed = isaCpuFlags(level)
  const missing = new Set<string>()
  for (let cpu = 0; cpu < cpus; cpu++) {
    const has = info.flags.get(cpu)
    for (const flag of needed) if (!has?.has(flag)) missing.add(flag)
  }
  return needed.filter(flag => missing.has(flag))
}

/** Throws `unverifiable` naming the missing flags and the fix when this runner cannot run the level. */
export async function checkCpuFeatures(
  level: IsaLevel,
  cpus: number,
  read: CpuInfoReader = readProcCpuInfo
): Promise<void> {
  const text = await read().catch((error: Error) => {
    throw unverifiable(
      `predicate.build.isa: the ledger pins ${level} but /proc/cpuinfo cannot be read to check this runner's CPU (${error.message}): run on a Linux runner`
    )
  })
  const missing = missingIsaFlags(parseCpuInfo(text), level, cpus)
  if (missing.length > 0)
    throw unverifiable(
      `predicate.build.isa: the ledger pins ${level} but this runner's CPU lacks ${missing.join(' ')} (/proc/cpuinfo, ${cpus === 1 ? 'CPU 0' : `CPUs 0-${cpus - 1}`}): run on a runner whose CPU has ${level}`
    )
}
