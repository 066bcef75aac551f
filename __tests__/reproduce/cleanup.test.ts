import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import type { Run } from '../../src/exec.js'
import { removeBuildTree } from '../../src/reproduce/cleanup.js'

let work: string
let locked: string | undefined

beforeEach(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'verify-model-cleanup-'))
})
afterEach(async () => {
  if (locked) unlock(locked)
  locked = undefined
  await rm(work, { recursive: true, force: true })
})

/**
 * A directory whose file this process cannot remove: what a build leaves for a runner that is
 * neither root nor uid 1000. Root is not stopped by modes, so it gets the immutable flag.
 */
async function lockedDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, 'weights.bin'), 'x')
  if (process.getuid?.() === 0) execFileSync('chattr', ['+i', dir])
  else await chmod(dir, 0o555)
  locked = dir
}

function unlock(dir: string): void {
  if (process.getuid?.() === 0) execFileSync('chattr', ['-i', dir])
  else execFileSync('chmod', ['755', dir])
}

describe('removeBuildTree', () => {
  it('removes a tree without sudo when it can', async () => {
    const calls: string[][] = []
    const tree = path.join(work, 'scratch')
    await mkdir(path.join(tree, 'out/sub'), { recursive: true })
    await writeFile(path.join(tree, 'out/sub/model.bin'), 'x')
    await removeBuildTree(tree, async (file, args) => {
      calls.push([file, ...args])
      return { exitCode: 0, stdout: '', stderr: '' }
    })
    expect(existsSync(tree)).toBe(false)
    expect(calls).toEqual([])
  })

  it('falls back to passwordless sudo for files it may not remove, and never throws', async () => {
    const tree = path.join(work, 'scratch')
    await lockedDirectory(path.join(tree, 'out/sub'))
    const calls: string[][] = []
    const run: Run = async (file, args) => {
      calls.push([file, ...args])
      throw new Error('sudo: a password is required')
    }
    await expect(removeBuildTree(tree, run)).resolves.toBeUndefined()
    expect(calls).toEqual([['sudo', '--non-interactive', 'rm', '-rf', '--', tree]])
  })
})
