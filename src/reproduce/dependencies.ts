import { createHash } from 'node:crypto'
import { constants, lstat, open } from 'node:fs/promises'
import path from 'node:path'
import { clip } from '../text/sanitize.js'
import { unsafePathReason } from '../protocol/paths.js'
import { invalid } from '../errors.js'
import type { Dependency } from '../protocol/ledger.js'

/**
 * Checks each `dependencies[].name` (docs/protocol.md section 2): a regular file inside `srcDir`,
 * reached without a symbolic link on the way (every component is lstat'ed, so a link in the
 * source cannot point the check at a file elsewhere), whose sha256 is the ledger's.
 */
export async function checkDependencies(
  srcDir: string,
  dependencies: readonly Dependency[]
): Promise<void> {
  for (const [index, dependency] of dependencies.entries()) {
    const field = `predicate.dependencies[${index}]`
    const file = await locate(srcDir, dependency.name, field)
    const actual = await sha256File(file)
    if (actual !== dependency.sha256) {
      throw invalid(
        `${field}: dependency ${clip(dependency.name)}: sha256 mismatch: ledger ${dependency.sha256}, source ${actual}: ` +
          'the file at the commit differs from the one the ledger was written for',
        undefined,
        { code: 'DEPENDENCY_DIGEST' }
      )
    }
  }
}

async function locate(srcDir: string, name: string, field: string): Promise<string> {
  const fail = (reason: string) => invalid(`${field}: dependency ${clip(name)}: ${reason}`)
  if (unsafePathReason(name) !== undefined) throw fail('not a plain relative path')
  const segments = name.split('/')
  let current = srcDir
  for (const [i, segment] of segments.entries()) {
    current = path.join(current, segment)
    const shown = segments.slice(0, i + 1).join('/')
    const stats = await lstat(current).catch(() => undefined)
    if (stats === undefined) throw fail('not found in the source tree')
    if (stats.isSymbolicLink()) throw fail(`${shown} is a symbolic link, which is not followed`)
    const last = i === segments.length - 1
    if (!last && !stats.isDirectory()) throw fail(`${shown} is not a directory`)
    if (last && !stats.isFile()) throw fail('not a regular file')
  }
  return current
}

async function sha256File(file: string): Promise<string> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW)
  const hash = createHash('sha256')
  try {
    for await (const chunk of handle.createReadStream({ autoClose: false })) hash.update(chunk)
  } finally {
    await handle.close()
  }
  return hash.digest('hex')
}
