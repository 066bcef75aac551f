import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import type { RunResult } from '../../src/exec.js'
import { runnerLimits } from '../../src/action/runner-limits.js'
import { runContainer } from '../../src/reproduce/container.js'
import { bytesUnder, defaultMemoryBytes, formatBytes } from '../../src/reproduce/limits.js'

const GIB = 2 ** 30
const MIB = 2 ** 20

describe('defaultMemoryBytes: the runner memory minus a margin', () => {
  it.each([
    ['24 GiB machine', 24 * GIB, undefined, 21 * GIB],
    ['16 GiB machine', 16 * GIB, undefined, 14 * GIB],
    ['a 4 GiB cgroup on a 24 GiB machine', 24 * GIB, 4 * GIB, 3 * GIB],
    ['no cgroup limit reported as 2^64', 24 * GIB, 2 ** 64, 21 * GIB],
    ['no cgroup limit reported as 0', 16 * GIB, 0, 14 * GIB],
    ['a tiny machine keeps a floor', 1 * GIB, undefined, 512 * MIB]
  ])('%s', (_, total, constrained, expected) => {
    expect(defaultMemoryBytes(total, constrained)).toBe(expected)
  })

  it('formats limits for messages', () => {
    expect([64 * MIB, 21 * GIB, 1536, 3 * 2 ** 40].map(formatBytes)).toEqual([
      '64 MiB',
      '21 GiB',
      '1.5 KiB',
      '3 TiB'
    ])
  })
})

describe('bytesUnder', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'verify-model-limits-'))
    await mkdir(path.join(dir, 'a/b'), { recursive: true })
    await writeFile(path.join(dir, 'a/one'), Buffer.alloc(1000))
    await writeFile(path.join(dir, 'a/b/two'), Buffer.alloc(2000))
    // A link to something big outside counts nothing: links are never followed.
    await writeFile(path.join(dir, '..', `${path.basename(dir)}-big`), Buffer.alloc(10_000))
    await symlink(path.join(dir, '..', `${path.basename(dir)}-big`), path.join(dir, 'link'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
    await rm(`${dir}-big`, { force: true })
  })

  it('sums the regular files, without following links', async () => {
    expect(await bytesUnder(dir, 1_000_000)).toBe(3000)
  })

  it('stops counting once past the limit', async () => {
    expect(await bytesUnder(dir, 500)).toBeGreaterThan(500)
  })
})

describe('runnerLimits: the runner environment variables', () => {
  it('reads sizes the docker way and the cache timeout in milliseconds', () => {
    expect(
      runnerLimits({
        VERIFY_MODEL_MEMORY_LIMIT: '512m',
        VERIFY_MODEL_MAX_OUTPUT: '2G',
        VERIFY_MODEL_CACHE_TIMEOUT_MS: '1500'
      })
    ).toEqual({ memoryBytes: 512 * MIB, maxOutputBytes: 2 * GIB, cacheTimeoutMs: 1500 })
    expect(runnerLimits({})).toEqual({})
  })

  it.each([
    ['VERIFY_MODEL_MEMORY_LIMIT', '8 GB', 'must be a size like 512m or 8g'],
    ['VERIFY_MODEL_MAX_OUTPUT', '-1', 'must be a size like 512m or 8g'],
    ['VERIFY_MODEL_MEMORY_LIMIT', '0', 'must be a size like 512m or 8g'],
    ['VERIFY_MODEL_CACHE_TIMEOUT_MS', '2s', 'must be a whole number of milliseconds ≥ 1']
  ])('%s=%j is refused, naming the variable', (name, value, message) => {
    expect(() => runnerLimits({ [name]: value })).toThrow(`${name} ${message}; got '${value}'`)
  })
})

describe('runContainer: why a killed build ended', () => {
  /** A fake docker whose `run` exits with `exitCode` and whose `inspect` answers `inspect`. */
  function docker(exitCode: number, inspect: RunResult) {
    const calls: string[] = []
    const run = async (_file: string, args: readonly string[]): Promise<RunResult> => {
      calls.push(args[0])
      if (args[0] === 'run') return { exitCode, stdout: '', stderr: '' }
      if (args[0] === 'inspect') return inspect
      return { exitCode: 0, stdout: '', stderr: '' }
    }
    return { run, calls }
  }
  const options = { name: 'c1', timeoutSeconds: 60 }

  it('reports an OOM kill from the daemon, before the container is removed', async () => {
    const fake = docker(137, { exitCode: 0, stdout: 'true\n', stderr: '' })
    const result = await runContainer(['run'], { ...options, run: fake.run })
    expect(result).toMatchObject({ exitCode: 137, oomKilled: true })
    expect(fake.calls).toEqual(['run', 'inspect', 'rm'])
  })

  it('reports a daemon that went away during the build', async () => {
    const gone =
      'Cannot connect to the Docker daemon at unix:///tmp/x/docker.sock. Is the docker daemon running?'
    const fake = docker(143, { exitCode: 1, stdout: '', stderr: `${gone}\n` })
    const result = await runContainer(['run'], { ...options, run: fake.run })
    expect(result).toMatchObject({ exitCode: 143, daemonLost: gone })
    expect(result.oomKilled).toBeUndefined()
  })

  it('claims neither when the container is simply gone, nor asks for an ordinary failure', async () => {
    const missing = docker(137, { exitCode: 1, stdout: '', stderr: 'Error: No such object: c1\n' })
    const result = await runContainer(['run'], { ...options, run: missing.run })
    expect(result.oomKilled).toBeUndefined()
    expect(result.daemonLost).toBeUndefined()
    const failed = docker(3, { exitCode: 0, stdout: 'true\n', stderr: '' })
    expect(await runContainer(['run'], { ...options, run: failed.run })).not.toHaveProperty(
      'oomKilled'
    )
    expect(failed.calls).toEqual(['run', 'rm'])
  })
})
