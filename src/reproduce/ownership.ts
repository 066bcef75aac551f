import type { Run } from '../exec.js'
import { unverifiable } from '../errors.js'

/**
 * Makes a tree the build wrote (files of uid 1000, directories 0777) the caller's: owned by
 * this process's uid:gid, directories 0755, regular files 0644. Root changes owners itself;
 * another user (GitHub's runner is uid 1001) through passwordless `sudo`. Links are never
 * followed (`chown --no-dereference`, `find` does not follow them). Coreutils rather than one
 * call per file from here: a model of 200,000 files takes seconds, not minutes.
 */
export async function makeCallers(dir: string, run: Run): Promise<void> {
  const uid = process.getuid?.()
  const gid = process.getgid?.()
  if (uid === undefined || gid === undefined) return
  const chown = ['chown', '-R', '--no-dereference', `${uid}:${gid}`, '--', dir]
  const owned = await (
    uid === 0 ? run(chown[0], chown.slice(1)) : run('sudo', ['--non-interactive', ...chown])
  ).catch((error: Error) => ({ exitCode: -1, stderr: error.message }))
  if (owned.exitCode !== 0)
    throw unverifiable(
      `cannot make the outputs in ${dir} yours (they belong to the build's uid 1000): ${uid === 0 ? '' : 'sudo '}chown failed: ${owned.stderr.trim()}; run as root or with passwordless sudo`
    )
  // `dir` is absolute, so find cannot read it as an option.
  const modes = await run('find', [
    dir,
    '(',
    '-type',
    'd',
    '-exec',
    'chmod',
    '0755',
    '{}',
    '+',
    ')',
    '-o',
    '(',
    '-type',
    'f',
    '-exec',
    'chmod',
    '0644',
    '{}',
    '+',
    ')'
  ])
  if (modes.exitCode !== 0)
    throw unverifiable(`cannot set the modes of the outputs in ${dir}: ${modes.stderr.trim()}`)
}
