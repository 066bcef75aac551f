// build.isa end to end (docs/protocol.md section 4.1): the exact profile reaching the container, and the CPU
// check through the bundled action (node dist/index.js) as the runner runs it.
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { mkdtempSync, rmSync } from 'node:fs'
import { mkdtemp, readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { escapeHtml } from '../../src/text/sanitize.js'
import { run } from '../../src/exec.js'
import { normalizedEnv } from '../../src/protocol/contract-env.js'
import type { ImageRef, Ledger } from '../../src/protocol/ledger.js'
import { reproduce } from '../../src/reproduce/index.js'
import { runBundledAction, type BundledActionResult } from '../helpers/action-runner.js'
import { cpuInfoText, EPYC_FLAGS, EPYC_NO_AVX512_FLAGS } from '../helpers/cpuinfo.js'
import { buildBusyboxImage, describeDocker } from '../helpers/docker.js'
import { makeGitRepo } from '../helpers/git.js'
import { publishModel, type PublishedModel } from '../helpers/fixture.js'
import { isaVectors } from '../helpers/ledger.js'

const vectors = isaVectors

// Both kinds of runner are this machine's CPUs under another /proc/cpuinfo, so the test is the
// same on a host with AVX-512 and on one without (the build itself uses none of it).
const cpusWith = (flags: string) =>
  cpuInfoText(Array.from({ length: os.availableParallelism() }, () => flags))
const noAvx512 = () => cpusWith(EPYC_NO_AVX512_FLAGS)
const withAvx512 = () => cpusWith(EPYC_FLAGS)

const V4_UNVERIFIABLE =
  "predicate.build.isa: the ledger pins x86-64-v4 but this runner's CPU lacks avx512f avx512bw avx512cd avx512dq avx512vl (/proc/cpuinfo, CPU 0): run on a runner whose CPU has x86-64-v4"

describeDocker('build.isa in the container and through the bundled action', () => {
  let dir: string
  let image: ImageRef
  let pinned: PublishedModel
  let unpinned: PublishedModel

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e2e-isa-'))
    image = await buildBusyboxImage()
    pinned = await publishModel(path.join(dir, 'v4'), {
      image,
      isa: 'x86-64-v4',
      cpuInfo: withAvx512()
    })
    unpinned = await publishModel(path.join(dir, 'none'), { image, isa: 'none' })
  }, 120_000)

  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  const action = (model: PublishedModel, cpuInfo?: string) =>
    runBundledAction(
      {
        attestation: model.sbaPath,
        'public-key': model.publicKey,
        model: model.modelDir,
        dataset: model.datasetDir
      },
      { baseDir: dir, cpuInfo }
    )

  function ledgerFor(repo: string, commit: string, isa: Ledger['build']['isa']): Ledger {
    return {
      source: { uri: `git+file://${repo}`, gitCommit: commit },
      dependencies: [],
      environment: image,
      build: {
        command: ['sh', '-c', 'env > /out/env.txt'],
        env: { SEED: '3' },
        sourceDateEpoch: 1700000000,
        workdir: '.',
        network: 'none',
        timeoutSeconds: 60,
        cpus: 1,
        gpus: 'none',
        ...(isa ? { isa } : {})
      }
    }
  }

  it.each([['x86-64-v2'], ['x86-64-v3']] as const)(
    '%s: the environment in the container is the contract plus exactly the vector strings',
    async level => {
      const repo = path.join(dir, `env-${level}`)
      const commit = makeGitRepo(repo, { 'README.md': 'env\n' })
      const ledger = ledgerFor(repo, commit, level)
      const out = path.join(await mkdtemp(path.join(dir, 'out-')), 'kept')
      await reproduce(ledger, { workDir: dir, allowNetwork: false, keepOutputsIn: out }, { run })
      const lines = (await readFile(path.join(out, 'env.txt'), 'utf8')).trimEnd().split('\n')
      for (const [name, value] of Object.entries(vectors[level]))
        expect(lines).toContain(`${name}=${value}`)
      const env = Object.fromEntries(
        lines.map(line => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)])
      )
      expect(env).toEqual({
        ...normalizedEnv({ sourceDateEpoch: 1700000000, cpus: 1 }),
        ...vectors[level],
        SEED: '3',
        // Docker's own (the image sets no PATH), and the shell's that runs `env`.
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        HOSTNAME: 'build',
        PWD: '/src',
        SHLVL: '1'
      })
    }
  )

  it('an unpinned ledger gets no profile variable', async () => {
    const repo = path.join(dir, 'env-none')
    const commit = makeGitRepo(repo, { 'README.md': 'env\n' })
    const out = path.join(await mkdtemp(path.join(dir, 'out-')), 'kept')
    await reproduce(
      ledgerFor(repo, commit, undefined),
      { workDir: dir, allowNetwork: false, keepOutputsIn: out },
      { run }
    )
    const text = await readFile(path.join(out, 'env.txt'), 'utf8')
    for (const name of Object.keys(vectors['x86-64-v2'])) expect(text).not.toContain(`${name}=`)
  })

  it('x86-64-v4 on a runner without AVX-512: unverifiable through the bundle, before any build', async () => {
    const result = await action(pinned, noAvx512())
    expectExit(result, 1)
    expect(result.outputs.result).toBe('unverifiable')
    expect(result.report).toMatchObject({
      result: 'unverifiable',
      reason: V4_UNVERIFIABLE,
      isa: 'x86-64-v4'
    })
    expect(result.report!.checks.map(check => check.name)).toEqual(['signature'])
    expect(result.report!.build).toBeUndefined()
    expect(result.summary).toContain(escapeHtml(V4_UNVERIFIABLE))
    expect(result.stdout).toContain(
      `::error title=verify-model%3A unverifiable::${V4_UNVERIFIABLE}`
    )
  })

  it('the same ledger on a runner with AVX-512: verified through the bundle', async () => {
    const result = await action(pinned, withAvx512())
    expectExit(result, 0)
    expect(result.report).toMatchObject({ result: 'verified', isa: 'x86-64-v4' })
    expect(result.report!.cpuDependence).toBeUndefined()
  })

  it('an unpinned ledger: verified, and the report, summary and log say it depends on the CPU', async () => {
    const result = await action(unpinned, noAvx512())
    expectExit(result, 0)
    expect(result.report).toMatchObject({ result: 'verified', isa: null })
    expect(result.report!.cpuDependence).toMatch(
      /^the ledger does not pin build\.isa, so the result depends on the runner's CPU .*verify-model ledger init --isa x86-64-v3/
    )
    expect(result.summary).toContain('⚠️ CPU: the ledger does not pin build.isa')
    expect(result.summary).toContain('<td>CPU level (build.isa)</td><td><code>unpinned</code></td>')
    expect(result.stdout).toContain('::warning::the ledger does not pin build.isa')
  })
})

function expectExit(result: BundledActionResult, code: number): void {
  if (result.exitCode !== code)
    throw new Error(
      `exit ${result.exitCode}, expected ${code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`
    )
}
