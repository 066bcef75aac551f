import { rm } from 'node:fs/promises'
import type { Run } from '../exec.js'

/**
 * Removes a directory the build wrote into (its /src or /out). What the build creates belongs
 * to uid 1000, and a file in a directory the build made can only be removed by root or uid
 * 1000: a runner that is neither (GitHub's runner user is uid 1001) falls back to passwordless
 * `sudo`. Never throws, so a cleanup failure cannot hide the verdict; at worst the directory
 * stays in the runner's temporary space.
 */
export async function removeBuildTree(dir: string, run: Run): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true })
  } catch {
    // The code varies (EACCES, EPERM, or ENOTDIR from rm's retry as a directory).
    await run('sudo', ['--non-interactive', 'rm', '-rf', '--', dir]).catch(() => undefined)
  }
}
