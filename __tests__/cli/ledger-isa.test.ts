import { beforeAll, describe, expect, it } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { cli } from '../helpers/cli.js'
import { makeGitRepo } from '../helpers/git.js'

const image = `127.0.0.1:5000/acme/trainer@sha256:${'6'.repeat(64)}`

describe('ledger init --isa', () => {
  let source: string

  beforeAll(() => {
    source = path.join(mkdtempSync(path.join(os.tmpdir(), 'ledger-isa-')), 'source')
    makeGitRepo(source, { 'train.sh': 'true\n' })
  })

  const init = (...flags: string[]) =>
    cli(
      'ledger',
      'init',
      '--source-dir',
      source,
      '--image',
      image,
      ...flags,
      '--',
      'sh',
      'train.sh'
    )

  it('pins x86-64-v3 by default on linux/amd64, silently', async () => {
    const result = await init()
    expect(result).toMatchObject({ code: 0, stderr: '' })
    expect(JSON.parse(result.stdout).predicate.build.isa).toBe('x86-64-v3')
  })

  it.each([['x86-64-v2'], ['x86-64-v4']])('writes --isa %s', async level => {
    const result = await init('--isa', level)
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout).predicate.build.isa).toBe(level)
  })

  it('--isa none writes an unpinned ledger and warns on stderr', async () => {
    const result = await init('--isa', 'none')
    expect(result.code).toBe(0)
    expect('isa' in JSON.parse(result.stdout).predicate.build).toBe(false)
    expect(result.stderr).toBe(
      "warning: --isa none writes an unpinned ledger: the image's libraries pick their kernels from each runner's CPU, so verifiers on another CPU can get different bytes (mismatch); pin a level (--isa x86-64-v3) unless `verify-model build --cross-check` says the build is portable\n"
    )
  })

  it('refuses an unknown level, and a level on another platform', async () => {
    const unknown = await init('--isa', 'avx2')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toBe(
      "error: --isa must be one of x86-64-v2, x86-64-v3, x86-64-v4 or none, got 'avx2'\n"
    )
    const arm = await init('--platform', 'linux/arm64', '--isa', 'x86-64-v3')
    expect(arm.code).toBe(2)
    expect(arm.stderr).toContain(
      "error: predicate.build.isa: 'x86-64-v3' is a level of linux/amd64 but environment.platform is 'linux/arm64'"
    )
  })

  it('leaves a non-amd64 ledger unpinned by default (no other platform has levels)', async () => {
    const result = await init('--platform', 'linux/arm64')
    expect(result).toMatchObject({ code: 0, stderr: '' })
    expect('isa' in JSON.parse(result.stdout).predicate.build).toBe(false)
  })

  it('refuses a --env that the contract sets, naming the variable', async () => {
    const result = await init('--env', 'OMP_NUM_THREADS=2')
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(
      'predicate.build.env.OMP_NUM_THREADS: OMP_NUM_THREADS is set by the verifier and must not be overridden (build.cpus sets the thread count): remove it from build.env'
    )
  })
})
