// The bundled action (node dist/index.js) as the runner runs it: with log-key set, even mode
// check (no rebuild) requires a valid transparency-log proof.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { runBundledAction } from '../helpers/action-runner.js'
import { cli } from '../helpers/cli.js'
import { serveDirectory, writeKeyPair, writeSba, type KeyFiles } from '../helpers/tlog.js'

describe('the bundled action requires a log proof when log-key is set', () => {
  let dir: string
  let publisher: KeyFiles
  let vkey: string
  let sba: string
  let otherSba: string
  let proof: string
  let otherProof: string
  let model: string
  let capability: string
  let server: { url: string; close: () => Promise<void> }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tlog-action-'))
    publisher = writeKeyPair(dir, 'publisher')
    const logKey = writeKeyPair(dir, 'log')
    const logDir = path.join(dir, 'log')
    vkey = (
      await cli(
        'log',
        'init',
        '--dir',
        logDir,
        '--origin',
        'example.org/log',
        '--key',
        logKey.privatePath
      )
    ).stdout.trim()
    sba = writeSba(dir, 1, [publisher])
    otherSba = writeSba(dir, 2, [publisher])
    proof = path.join(dir, 'model.tlog-proof')
    otherProof = path.join(dir, 'other.tlog-proof')
    for (const [file, out] of [
      [sba, proof],
      [otherSba, otherProof]
    ]) {
      const appended = await cli(
        'log',
        'append',
        file,
        '--dir',
        logDir,
        '--key',
        logKey.privatePath,
        '--public-key',
        publisher.publicPath,
        '-o',
        out
      )
      expect(appended.code).toBe(0)
    }
    model = path.join(dir, 'model')
    mkdirSync(model)
    writeFileSync(path.join(model, 'W1.npy'), 'w1\n')
    writeFileSync(path.join(model, 'W2.npy'), 'w2\n')
    capability = (
      await cli('capability', '--sba', sba, '--model', model, '--public-key', publisher.publicPath)
    ).stdout.trim()
    server = await serveDirectory(dir)
  }, 120_000)

  afterAll(async () => {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const check = (inputs: Record<string, string>) =>
    runBundledAction(
      {
        attestation: sba,
        'public-key': readFileSync(publisher.publicPath, 'utf8'),
        mode: 'check',
        model,
        'expected-capability': capability,
        'log-key': vkey,
        ...inputs
      },
      { baseDir: dir }
    )

  it('passes with the proof and shows what was checked', async () => {
    const run = await check({ 'log-proof': proof })
    expect(run.exitCode).toBe(0)
    expect(run.outputs).toMatchObject({
      result: 'verified',
      capability,
      'log-index': '0',
      'log-origin': 'example.org/log'
    })
    expect(run.report!.checks.map(c => c.name)).toEqual(['signature', 'log', 'hash', 'compare'])
    // The proof written by the first append: its checkpoint is the tree of size 1.
    expect(run.report!.log).toMatchObject({ index: 0, origin: 'example.org/log', treeSize: 1 })
    expect(run.summary).toContain(
      '<td>log entry</td><td><code>index 0 of 1 in example.org/log, root '
    )
  }, 60_000)

  it('fails without a proof, with a proof of another SBA, with a wrong log key', async () => {
    const none = await check({})
    expect(none.exitCode).toBe(1)
    expect(none.outputs).toEqual({ result: 'invalid' })
    expect(none.stdout).toContain(
      'log-key is set, so a log proof is required: set log-proof (path or https:// URL of the .tlog-proof)'
    )

    const other = await check({ 'log-proof': otherProof })
    expect(other.exitCode).toBe(1)
    expect(other.outputs.result).toBe('invalid')
    expect(other.outputs.capability).toBeUndefined()
    expect(other.outputs['log-index']).toBeUndefined()
    expect(other.report!.reason).toMatch(
      /^log proof entry: it logs attestation [0-9a-f]{64}, not this SBA's /
    )
    expect(other.report!.checks.find(c => c.name === 'log')?.status).toBe('fail')

    const tampered = path.join(dir, 'tampered.tlog-proof')
    writeFileSync(tampered, readFileSync(proof, 'utf8').replace('\nindex 0\n', '\nindex 1\n'))
    const moved = await check({ 'log-proof': tampered })
    expect(moved.outputs.result).toBe('invalid')
    expect(moved.report!.reason).toMatch(/^log proof inclusion: /)

    const wrongKey = await check({
      'log-proof': proof,
      'log-key': vkey.replace('example.org/log+', 'example.org/other+')
    })
    expect(wrongKey.outputs).toEqual({ result: 'invalid' })
    expect(wrongKey.stdout).toMatch(/log key: key id [0-9a-f]{8} does not match the key/)
  }, 120_000)

  it('downloads the proof by URL; an unreachable one is unverifiable', async () => {
    const byUrl = await check({ 'log-proof': `${server.url}/model.tlog-proof` })
    expect(byUrl.outputs).toMatchObject({ result: 'verified', 'log-index': '0' })
    const missing = await check({ 'log-proof': `${server.url}/missing.tlog-proof` })
    expect(missing.exitCode).toBe(1)
    expect(missing.outputs.result).toBe('unverifiable')
    expect(missing.report!.reason).toMatch(/missing\.tlog-proof: HTTP 404/)
  }, 120_000)
})
