// verifyModel and runAction in-process, every dependency injected (run, download, cache, core):
// no Docker, no bundle, no module mocks.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { runAction, type ActionCore, type ActionDeps } from '../../src/action/main.js'
import type { Run } from '../../src/exec.js'
import { signEnvelope } from '../../src/protocol/envelope.js'
import { privateKeyFromSeed, publicKeyPem, type PrivateKey } from '../../src/protocol/keys.js'
import { createStatement } from '../../src/protocol/ledger.js'
import { verifyAttestation } from '../../src/protocol/attestation.js'
import { capabilityOf, verifyModel, type Reporter } from '../../src/verify/pipeline.js'
import { treeSha256 } from '../../src/digest/tree.js'

const publisher = privateKeyFromSeed(new Uint8Array(32).fill(7))
const stranger = privateKeyFromSeed(new Uint8Array(32).fill(9))
const COMMIT = '4b825dc642cb6eb9a060e54bf8d69288fbee4904'

function statement(outputs = ['weights.bin', 'config.json']): Uint8Array {
  return createStatement({
    sourceUri: 'git+https://example.org/acme/tiny',
    gitCommit: COMMIT,
    dependencies: [],
    image: { uri: 'oci://127.0.0.1:5000/acme/trainer', sha256: 'e'.repeat(64) },
    build: { command: ['sh', 'build.sh'], sourceDateEpoch: 1700000000, outputs, isa: 'x86-64-v3' }
  })
}

function sign(keys: PrivateKey[] = [publisher], bytes = statement()): Buffer {
  return Buffer.from(signEnvelope(bytes, keys))
}

/** The SBA with one byte of its payload changed after signing. */
function tampered(): Buffer {
  const envelope = JSON.parse(sign().toString('utf8'))
  const payload = Buffer.from(envelope.payload, 'base64')
  payload[payload.indexOf('sh')] ^= 0x01
  envelope.payload = payload.toString('base64')
  return Buffer.from(JSON.stringify(envelope))
}

/** A `run` that fails the test if anything is executed (no git, no docker). */
function forbiddenRun(): { run: Run; calls: string[][] } {
  const calls: string[][] = []
  return {
    calls,
    run: async (file, args) => {
      calls.push([file, ...args])
      return { exitCode: 127, stdout: '', stderr: `${file}: not allowed in this test` }
    }
  }
}

const silent: Reporter = {
  phase: () => undefined,
  info: () => undefined,
  buildLog: () => undefined,
  hashProgress: () => undefined
}

let scratch: string
let modelDir: string
let capability: string

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'verify-model-in-process-'))
  modelDir = path.join(scratch, 'model')
  await mkdir(modelDir)
  await writeFile(path.join(modelDir, 'weights.bin'), Buffer.alloc(4096, 3))
  await writeFile(path.join(modelDir, 'config.json'), '{"epochs": 1}\n')
  const attestation = verifyAttestation(sign(), [publisher.publicKey], 1)
  capability = capabilityOf(attestation, (await treeSha256(modelDir)).root)
})

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true })
})

const request = (overrides: Partial<Parameters<typeof verifyModel>[0]> = {}) => ({
  mode: 'check' as const,
  sba: sign(),
  trustedKeys: [publisher.publicKey],
  threshold: 1,
  model: modelDir,
  expectedCapability: capability,
  allowNetwork: false,
  workDir: scratch,
  ...overrides
})

describe('verifyModel in-process', () => {
  it('check mode: verified by the recomputed capability, nothing run', async () => {
    const { run, calls } = forbiddenRun()
    const report = await verifyModel(request(), { run, reporter: silent })
    expect(report).toMatchObject({ result: 'verified', capability })
    expect(report.code).toBeUndefined()
    expect(report.checks.map(c => [c.name, c.status])).toEqual([
      ['signature', 'pass'],
      ['hash', 'pass'],
      ['compare', 'pass']
    ])
    expect(report.checks.every(c => c.detail !== '' && typeof c.durationMs === 'number')).toBe(true)
    expect(calls).toEqual([])
  })

  it('check mode: another capability is a mismatch', async () => {
    const { run } = forbiddenRun()
    const report = await verifyModel(request({ expectedCapability: `ocap1:${'0'.repeat(64)}` }), {
      run,
      reporter: silent
    })
    expect(report).toMatchObject({ result: 'mismatch', code: 'CAPABILITY_MISMATCH' })
    expect(report.capability).toBeUndefined()
  })

  it('a tampered SBA is invalid at the signature, before anything runs', async () => {
    const { run, calls } = forbiddenRun()
    for (const mode of ['check', 'verify', 'reproduce'] as const) {
      const report = await verifyModel(
        request({ mode, sba: tampered(), model: mode === 'reproduce' ? undefined : modelDir }),
        { run, reporter: silent }
      )
      expect(report).toMatchObject({ result: 'invalid', code: 'SIGNATURE_THRESHOLD' })
      expect(report.checks).toEqual([
        expect.objectContaining({ name: 'signature', status: 'fail', detail: report.reason })
      ])
      expect(report.capability).toBeUndefined()
    }
    expect(calls).toEqual([])
  })

  it('an SBA signed by another key names both key ids', async () => {
    const { run } = forbiddenRun()
    const report = await verifyModel(request({ sba: sign([stranger]) }), { run, reporter: silent })
    expect(report.code).toBe('SIGNATURE_THRESHOLD')
    expect(report.reason).toContain(`trusted key id(s) ${publisher.publicKey.keyId}`)
    expect(report.reason).toContain(
      `the SBA's signatures name key id(s) ${stranger.publicKey.keyId}`
    )
  })

  it('verify mode: a download whose files cannot be the declared outputs is a mismatch with no build', async () => {
    const { run, calls } = forbiddenRun()
    const extra = path.join(scratch, 'extra-model')
    await mkdir(extra)
    await writeFile(path.join(extra, 'weights.bin'), 'w')
    await writeFile(path.join(extra, 'README.md'), '# model card\n')
    const report = await verifyModel(
      request({ mode: 'verify', model: extra, expectedCapability: undefined }),
      { run, reporter: silent }
    )
    expect(report).toMatchObject({ result: 'mismatch', code: 'FILE_SET_MISMATCH' })
    expect(report.reason).toContain("'README.md' is not under any declared output")
    expect(report.reason).toContain("declared output(s) 'config.json' missing")
    expect(report.checks.at(-1)).toMatchObject({ name: 'compare', status: 'fail' })
    expect(calls).toEqual([])
  })

  it('verify mode: a source git cannot fetch is unverifiable, with the cause kept', async () => {
    const { run, calls } = forbiddenRun()
    const report = await verifyModel(request({ mode: 'verify', expectedCapability: undefined }), {
      run,
      reporter: silent
    })
    expect(report).toMatchObject({ result: 'unverifiable', code: 'SOURCE_FETCH' })
    expect(report.checks.at(-1)).toMatchObject({ name: 'source', status: 'fail' })
    expect(calls[0][0]).toBe('git')
    expect(calls.some(call => call[0] === 'docker')).toBe(false)
  })
})

interface RecordedCore extends ActionCore {
  outputs: Record<string, string>
  failed: string[]
  warnings: string[]
  summaries: string[]
}

function fakeCore(inputs: Record<string, string>, summary?: () => Promise<void>): RecordedCore {
  const core: RecordedCore = {
    outputs: {},
    failed: [],
    warnings: [],
    summaries: [],
    getInput: name => inputs[name] ?? '',
    setSecret: () => undefined,
    setOutput: (name, value) => void (core.outputs[name] = value),
    setFailed: message => void core.failed.push(message),
    error: () => undefined,
    warning: message => void core.warnings.push(message),
    info: () => undefined,
    startGroup: () => undefined,
    endGroup: () => undefined,
    writeSummary: async html => {
      await summary?.()
      core.summaries.push(html)
    }
  }
  return core
}

function actionDeps(core: ActionCore): ActionDeps & { downloads: string[] } {
  const downloads: string[] = []
  return {
    core,
    downloads,
    run: forbiddenRun().run,
    download: async (url, file) => {
      downloads.push(url)
      const bytes = readFileSync(path.join(modelDir, 'weights.bin'))
      await writeFile(file, bytes)
      return { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') }
    },
    cache: {
      isFeatureAvailable: () => false,
      restoreCache: async () => undefined,
      saveCache: async () => 0
    },
    env: { RUNNER_TEMP: scratch, GITHUB_RUN_ID: '1' }
  }
}

describe('runAction in-process', () => {
  let sbaPath: string
  let tamperedPath: string

  beforeAll(async () => {
    sbaPath = path.join(scratch, 'model.sba.json')
    tamperedPath = path.join(scratch, 'tampered.sba.json')
    await writeFile(sbaPath, sign())
    await writeFile(tamperedPath, tampered())
  })

  const inputs = (overrides: Record<string, string> = {}) => ({
    attestation: sbaPath,
    'public-key': publicKeyPem(publisher.publicKey),
    mode: 'check',
    model: modelDir,
    'expected-capability': capability,
    ...overrides
  })

  it('check mode: passes, sets the outputs and writes the summary and the report', async () => {
    const core = fakeCore(inputs())
    await runAction(actionDeps(core))
    expect(core.failed).toEqual([])
    expect(core.outputs).toMatchObject({ result: 'verified', capability })
    expect(core.summaries).toHaveLength(1)
    expect(core.summaries[0]).toContain('verify-model: verified')
    const report = JSON.parse(readFileSync(core.outputs.report, 'utf8'))
    expect(report).toMatchObject({ result: 'verified', capability })
  })

  it('a tampered SBA fails the step as invalid with no capability output', async () => {
    const core = fakeCore(inputs({ attestation: tamperedPath }))
    await runAction(actionDeps(core))
    expect(core.outputs.result).toBe('invalid')
    expect(core.outputs.capability).toBeUndefined()
    expect(core.failed).toEqual([expect.stringMatching(/^invalid: SBA signatures: 0 of 1/)])
    expect(JSON.parse(readFileSync(core.outputs.report, 'utf8')).code).toBe('SIGNATURE_THRESHOLD')
  })

  it('a summary that cannot be written is a warning: the verdict and the outputs stand', async () => {
    const core = fakeCore(inputs(), async () => {
      throw new Error('EACCES: permission denied, open $GITHUB_STEP_SUMMARY')
    })
    await runAction(actionDeps(core))
    expect(core.failed).toEqual([])
    expect(core.outputs).toMatchObject({ result: 'verified', capability })
    expect(core.warnings).toEqual([
      'the job summary was not written: EACCES: permission denied, open $GITHUB_STEP_SUMMARY'
    ])
    expect(existsSync(core.outputs.report)).toBe(true)
  })

  it('model-url goes through the injected download', async () => {
    const single = verifyAttestation(sign(), [publisher.publicKey], 1)
    const oneFile = await treeSha256(path.join(modelDir, 'weights.bin'))
    const core = fakeCore(
      inputs({
        model: '',
        'model-url': 'weights.bin=https://models.example.org/weights.bin',
        'expected-capability': capabilityOf(single, oneFile.root)
      })
    )
    const deps = actionDeps(core)
    await runAction(deps)
    expect(deps.downloads).toEqual(['https://models.example.org/weights.bin'])
    expect(core.outputs.result).toBe('verified')
  })
})
