import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile
} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { VerifyError } from '../../src/errors.js'
import { run, type Run } from '../../src/exec.js'
import { fetchSource } from '../../src/reproduce/source.js'

const EPOCH = 1_700_000_000

let root: string
let counter = 0

/** Runs git for the fixtures, isolated from the host's configuration. */
function git(dir: string, args: string[], date = '2023-11-14T22:13:20Z'): string {
  return execFileSync(
    'git',
    ['-C', dir, '-c', 'user.name=Test', '-c', 'user.email=test@example.org', ...args],
    {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        HOME: root,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_AUTHOR_DATE: date,
        GIT_COMMITTER_DATE: date
      }
    }
  ).trim()
}

interface Fixture {
  uri: string
  /** First commit: no longer a branch tip. */
  old: string
  /** Tip of main. */
  tip: string
  /** An annotated tag object on the tip: an object id that is not a commit's. */
  tag: string
}

/** A repository with two commits: files, a subdirectory, an executable and a symbolic link. */
async function makeRepo(format: 'sha1' | 'sha256'): Promise<Fixture> {
  const dir = path.join(root, `origin-${format}`)
  await mkdir(path.join(dir, 'src'), { recursive: true })
  git(root, ['init', '-q', '-b', 'main', `--object-format=${format}`, dir])
  await writeFile(path.join(dir, 'train.py'), 'print("v1")\n')
  await writeFile(path.join(dir, 'src', 'model.py'), 'LAYERS = 2\n')
  await writeFile(path.join(dir, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 })
  await symlink('src/model.py', path.join(dir, 'link.py'))
  git(dir, ['add', '-A'])
  git(dir, ['commit', '-q', '-m', 'one'])
  const old = git(dir, ['rev-parse', 'HEAD'])
  await writeFile(path.join(dir, 'train.py'), 'print("v2")\n')
  git(dir, ['commit', '-q', '-am', 'two'], '2023-11-15T00:00:00Z')
  git(dir, ['tag', '-a', 'v2', '-m', 'v2'])
  return {
    uri: `git+file://${dir}`,
    old,
    tip: git(dir, ['rev-parse', 'HEAD']),
    tag: git(dir, ['rev-parse', 'v2'])
  }
}

/** The real runner, recording every git argv and exit code. */
function recording(extraConfig: string[] = []): {
  run: Run
  calls: { args: string[]; exitCode: number }[]
} {
  const calls: { args: string[]; exitCode: number }[] = []
  return {
    calls,
    run: async (file, args, options) => {
      const result = await run(file, [...extraConfig, ...args], options)
      calls.push({ args: [...args], exitCode: result.exitCode })
      return result
    }
  }
}

const newDest = () => path.join(root, `dest-${++counter}`)

async function failure(promise: Promise<void>, verdict: string): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e
  )
  expect(error).toBeInstanceOf(VerifyError)
  expect((error as VerifyError).verdict).toBe(verdict)
  return (error as VerifyError).message
}

/** Every path under `dir` with its lstat mtime in seconds. */
async function mtimes(dir: string): Promise<Record<string, number>> {
  const result: Record<string, number> = { '.': (await lstat(dir)).mtimeMs / 1000 }
  for (const entry of await readdir(dir, { recursive: true })) {
    result[entry] = (await lstat(path.join(dir, entry))).mtimeMs / 1000
  }
  return result
}

let sha1: Fixture
let sha256: Fixture

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'source-test-'))
  sha1 = await makeRepo('sha1')
  sha256 = await makeRepo('sha256')
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

describe('fetchSource', () => {
  it('exports the commit tree without .git, every mtime at sourceDateEpoch', async () => {
    const dest = newDest()
    await fetchSource({ uri: sha1.uri, gitCommit: sha1.tip }, dest, { run, sourceDateEpoch: EPOCH })
    expect((await readdir(dest)).sort()).toEqual(['link.py', 'run.sh', 'src', 'train.py'])
    expect(await readFile(path.join(dest, 'train.py'), 'utf8')).toBe('print("v2")\n')
    expect(await readlink(path.join(dest, 'link.py'))).toBe('src/model.py')
    expect((await lstat(path.join(dest, 'run.sh'))).mode & 0o111).not.toBe(0)
    const times = await mtimes(dest)
    expect(Object.keys(times).sort()).toEqual(
      ['.', 'link.py', 'run.sh', 'src', 'src/model.py', 'train.py'].sort()
    )
    for (const [entry, mtime] of Object.entries(times))
      expect([entry, mtime]).toEqual([entry, EPOCH])
  })

  it('fetches a sha256 repository', async () => {
    expect(sha256.tip).toMatch(/^[0-9a-f]{64}$/)
    const dest = newDest()
    await fetchSource({ uri: sha256.uri, gitCommit: sha256.old }, dest, {
      run,
      sourceDateEpoch: EPOCH
    })
    expect(await readFile(path.join(dest, 'train.py'), 'utf8')).toBe('print("v1")\n')
    expect(await readdir(dest)).not.toContain('.git')
  })

  it('fetches a commit that is not a branch tip with one shallow fetch (protocol v2)', async () => {
    const { run: spy, calls } = recording()
    const dest = newDest()
    await fetchSource({ uri: sha1.uri, gitCommit: sha1.old }, dest, {
      run: spy,
      sourceDateEpoch: EPOCH
    })
    expect(await readFile(path.join(dest, 'train.py'), 'utf8')).toBe('print("v1")\n')
    const fetches = calls.filter(c => c.args.includes('fetch'))
    expect(fetches).toHaveLength(1)
    expect(fetches[0].args).toContain('--depth')
  })

  it('falls back to a full fetch when the server refuses an unadvertised commit (protocol v0)', async () => {
    // Forcing v0 makes git's own upload-pack refuse a want that is not a ref tip.
    const { run: spy, calls } = recording(['-c', 'protocol.version=0'])
    const dest = newDest()
    await fetchSource({ uri: sha1.uri, gitCommit: sha1.old }, dest, {
      run: spy,
      sourceDateEpoch: EPOCH
    })
    expect(await readFile(path.join(dest, 'train.py'), 'utf8')).toBe('print("v1")\n')
    const fetches = calls.filter(c => c.args.includes('fetch'))
    expect(fetches.map(c => [c.args.includes('--depth'), c.exitCode])).toEqual([
      [true, 1],
      [false, 0]
    ])
  })

  it('is unverifiable when the commit is not at the remote', async () => {
    const missing = 'a'.repeat(40)
    const dest = newDest()
    expect(
      await failure(
        fetchSource({ uri: sha1.uri, gitCommit: missing }, dest, { run, sourceDateEpoch: EPOCH }),
        'unverifiable'
      )
    ).toBe(`predicate.source.digest.gitCommit: commit ${missing} not found at ${sha1.uri}`)
    expect(await readdir(root)).not.toContain(path.basename(dest))
  })

  it('rejects an object id that is not a commit (an annotated tag)', async () => {
    expect(sha1.tag).not.toBe(sha1.tip)
    expect(
      await failure(
        fetchSource({ uri: sha1.uri, gitCommit: sha1.tag }, newDest(), {
          run,
          sourceDateEpoch: EPOCH
        }),
        'invalid'
      )
    ).toBe(
      `predicate.source.digest.gitCommit: ledger ${sha1.tag} is not a commit id: it checks out as ${sha1.tip}`
    )
  })

  it('is unverifiable when the remote cannot be reached', async () => {
    const uri = `git+file://${root}/no-such-repo`
    expect(
      await failure(
        fetchSource({ uri, gitCommit: sha1.tip }, newDest(), { run, sourceDateEpoch: EPOCH }),
        'unverifiable'
      )
    ).toBe(
      `predicate.source.uri: cannot fetch ${uri}: fatal: '${root}/no-such-repo' does not appear to be a git repository`
    )
  })

  it('is not swayed by the host git configuration or environment', async () => {
    const decoy = path.join(root, 'decoy')
    await mkdir(decoy)
    git(decoy, ['init', '-q', '-b', 'main'])
    await writeFile(path.join(decoy, 'train.py'), 'print("decoy")\n')
    git(decoy, ['add', '-A'])
    git(decoy, ['commit', '-q', '-m', 'decoy'])
    const hostConfig = path.join(root, 'host.gitconfig')
    const redirect = `[url "file://${decoy}"]\n\tinsteadOf = ${sha1.uri.slice(4)}\n`
    await writeFile(hostConfig, redirect)
    const saved = { ...process.env }
    Object.assign(process.env, {
      GIT_CONFIG_GLOBAL: hostConfig,
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: `url.file://${decoy}.insteadOf`,
      GIT_CONFIG_VALUE_0: sha1.uri.slice(4),
      GIT_DIR: path.join(root, 'nowhere')
    })
    try {
      const dest = newDest()
      await fetchSource({ uri: sha1.uri, gitCommit: sha1.tip }, dest, {
        run,
        sourceDateEpoch: EPOCH
      })
      expect(await readFile(path.join(dest, 'train.py'), 'utf8')).toBe('print("v2")\n')
    } finally {
      process.env = saved
    }
  })

  it('refuses a destination that is not empty', async () => {
    const dest = newDest()
    await mkdir(dest)
    await writeFile(path.join(dest, 'keep'), 'x')
    await expect(
      fetchSource({ uri: sha1.uri, gitCommit: sha1.tip }, dest, { run, sourceDateEpoch: EPOCH })
    ).rejects.toThrow(/not empty/)
    expect(await readdir(dest)).toEqual(['keep'])
  })
})
