import { chmod, lchown, lstat, readdir } from 'node:fs/promises'
import path from 'node:path'
import type { Run } from '../exec.js'
import { unverifiable } from '../errors.js'

/**
 * Makes a tree the build wrote (files of uid 1000, directories 0777) the caller's: owned by
 * this process's uid:gid, directories 0755, files 0644. Root changes owners itself; another
 * user (GitHub's runner is uid 1001) through passwordless `sudo`. Links are never followed.
 */
export async function makeCallers(dir: string, run: Run): Promise<void> {
  const uid = process.getuid?.()
  const gid = process.getgid?.()
  if (uid === undefined || gid === undefined) return
  if (uid === 0) await chownTree(dir, uid, gid)
  else {
    const sudo = await run('sudo', [
      '--non-interactive',
      'chown',
      '-R',
      '--no-dereference',
      `${uid}:${gid}`,
      '--',
      dir
    ]).catch((error: Error) => ({ exitCode: -1, stderr: error.message }))
    if (sudo.exitCode !== 0)
      throw unverifiable(
        `cannot make the outputs in ${dir} yours (they belong to the build's uid 1000): sudo chown failed: ${sudo.stderr.trim()}; run as root or with passwordless sudo`
      )
  }
  await chmodTree(dir)
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await lchown(dir, uid, gid)
  for (const dirent of await readdir(dir, { withFileTypes: true })) {
    const child = path.join(dir, dirent.name)
    if (dirent.isDirectory()) await chownTree(child, uid, gid)
    else await lchown(child, uid, gid)
  }
}

/** Directories 0755, regular files 0644; anything else is left for the output rules to refuse. */
async function chmodTree(dir: string): Promise<void> {
  await chmod(dir, 0o755)
  for (const dirent of await readdir(dir, { withFileTypes: true })) {
    const child = path.join(dir, dirent.name)
    if (dirent.isDirectory()) await chmodTree(child)
    else if (dirent.isFile() && (await lstat(child)).isFile()) await chmod(child, 0o644)
  }
}
