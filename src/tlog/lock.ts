// One writer at a time: an O_EXCL lock file holding its owner; a dead owner's lock is stale.
import { randomBytes } from 'node:crypto'
import { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { setTimeout as delay } from 'node:timers/promises'
import { unverifiable } from '../errors.js'

export interface LockOptions {
  /** How long to wait for another writer. */
  waitMs?: number
  /** A lock older than this is stale even when its owner cannot be checked (another host). */
  staleMs?: number
}

interface Owner {
  pid: number
  host: string
  nonce: string
}

export async function withLock<T>(
  lockFile: string,
  body: () => Promise<T>,
  { waitMs = 30_000, staleMs = 10 * 60_000 }: LockOptions = {}
): Promise<T> {
  const owner: Owner = {
    pid: process.pid,
    host: os.hostname(),
    nonce: randomBytes(8).toString('hex')
  }
  const deadline = Date.now() + waitMs
  for (let pause = 5; ; pause = Math.min(pause * 2, 200)) {
    try {
      writeFileSync(lockFile, `${JSON.stringify(owner)}\n`, { flag: 'wx' })
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    if (removeIfStale(lockFile, staleMs)) continue
    if (Date.now() > deadline) {
      throw unverifiable(
        `log lock ${lockFile} is held by another writer (${describeOwner(lockFile)}) for more than ${waitMs} ms; if no append is running, delete it`
      )
    }
    await delay(pause)
  }
  try {
    return await body()
  } finally {
    // Only our own lock: a lock taken over as stale by another writer is theirs now.
    if (readOwner(lockFile)?.nonce === owner.nonce) unlinkSync(lockFile)
  }
}

function readOwner(lockFile: string): Owner | undefined {
  try {
    return JSON.parse(readFileSync(lockFile, 'utf8')) as Owner
  } catch {
    return undefined
  }
}

function describeOwner(lockFile: string): string {
  const owner = readOwner(lockFile)
  return owner === undefined ? 'owner unknown' : `pid ${owner.pid} on ${owner.host}`
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Moves a stale lock aside (rename is atomic: of two writers that both found it stale, one
 * wins) and puts it back if what was moved turns out to be a fresh lock taken in between.
 */
function removeIfStale(lockFile: string, staleMs: number): boolean {
  let stat
  try {
    stat = statSync(lockFile)
  } catch {
    return true
  }
  const owner = readOwner(lockFile)
  const local = owner !== undefined && owner.host === os.hostname()
  const stale = local ? !isAlive(owner.pid) : Date.now() - stat.mtimeMs > staleMs
  if (!stale) return false
  const aside = `${lockFile}.stale-${randomBytes(6).toString('hex')}`
  try {
    renameSync(lockFile, aside)
  } catch {
    return true
  }
  if (statSync(aside).ino !== stat.ino) {
    try {
      writeFileSync(lockFile, readFileSync(aside), { flag: 'wx' })
    } catch {
      // Someone else holds it now; the moved lock's owner will find its nonce gone and not unlink.
    }
  }
  unlinkSync(aside)
  return true
}
