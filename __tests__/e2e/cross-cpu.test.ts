// Portable reproduction for real (issue 10): models published on emulated Intel CPUs
// (`verify-model build --emulate-cpu`, qemu-user) and verified by the bundled action
// (node dist/index.js) on this machine's CPU. PyTorch picks CPU kernels at run time, so it
// reproduces only with build.isa pinned; the NumPy tiny model is portable even unpinned.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { UNPINNED_ISA_NOTE } from '../../src/verify/report.js'
import { runBundledAction, type BundledActionResult } from '../helpers/action-runner.js'
import { describeDocker } from '../helpers/docker.js'
import {
  makeExampleDataset,
  publishExample,
  type ExamplePublishOptions,
  type PublishedExample
} from '../helpers/examples.js'
import { trainerImage } from '../helpers/trainer-image.js'

/** One epoch (50 steps): a few seconds natively, about a minute and a half under qemu. */
const TORCH_ENV = ['EPOCHS=1']

type Case = 'torch-v2-nehalem' | 'torch-v3-haswell' | 'torch-unpinned-nehalem' | 'tiny-nehalem'

describeDocker('models published under qemu -cpu Nehalem / Haswell, verified on this CPU', () => {
  let dir: string
  const published = new Map<Case, PublishedExample>()

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'cross-cpu-'))
    const [torch, tiny] = await Promise.all([trainerImage('torch-cnn'), trainerImage('tiny-model')])
    const torchData = makeExampleDataset('torch-cnn', path.join(dir, 'torch-data'))
    const tinyData = makeExampleDataset('tiny-model', path.join(dir, 'tiny-data'))
    const cases: Record<Case, Omit<ExamplePublishOptions, 'image' | 'datasetDir'>> = {
      'torch-v2-nehalem': { example: 'torch-cnn', isa: 'x86-64-v2', emulateCpu: 'Nehalem' },
      'torch-v3-haswell': { example: 'torch-cnn', isa: 'x86-64-v3', emulateCpu: 'Haswell' },
      'torch-unpinned-nehalem': { example: 'torch-cnn', isa: 'none', emulateCpu: 'Nehalem' },
      'tiny-nehalem': { example: 'tiny-model', isa: 'none', emulateCpu: 'Nehalem' }
    }
    // qemu is CPU-bound and single-threaded per build: the four publishers run side by side.
    await Promise.all(
      Object.entries(cases).map(async ([name, options]) => {
        const torchCase = options.example === 'torch-cnn'
        const caseDir = path.join(dir, name)
        mkdirSync(caseDir)
        published.set(
          name as Case,
          await publishExample(caseDir, {
            ...options,
            image: torchCase ? torch : tiny,
            datasetDir: torchCase ? torchData : tinyData,
            env: torchCase ? TORCH_ENV : []
          })
        )
      })
    )
  }, 2_400_000)
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const verify = (name: Case): Promise<BundledActionResult> => {
    const model = published.get(name)!
    return runBundledAction(
      {
        attestation: model.sbaPath,
        'public-key': model.publicKey,
        model: model.modelDir,
        dataset: model.datasetDir
      },
      { baseDir: dir, timeoutMs: 600_000 }
    )
  }

  const expectVerified = (run: BundledActionResult, model: PublishedExample) => {
    expect({ exitCode: run.exitCode, result: run.outputs.result, stderr: run.stderr }).toEqual({
      exitCode: 0,
      result: 'verified',
      stderr: expect.any(String)
    })
    expect(run.outputs['model-digest']).toBe(model.modelRoot)
    expect(run.outputs['reproduced-digest']).toBe(model.modelRoot)
  }

  it('PyTorch pinned to x86-64-v2, published on an emulated Nehalem → verified', async () => {
    const model = published.get('torch-v2-nehalem')!
    expect(model.emulatedCpu).toBe('Nehalem')
    const run = await verify('torch-v2-nehalem')
    expectVerified(run, model)
    expect(run.report!.cpuDependence).toBeUndefined()
  }, 600_000)

  it('PyTorch pinned to x86-64-v3, published on an emulated Haswell → verified', async () => {
    const model = published.get('torch-v3-haswell')!
    expect(model.emulatedCpu).toBe('Haswell')
    expectVerified(await verify('torch-v3-haswell'), model)
  }, 600_000)

  it('the same PyTorch training unpinned from the Nehalem → mismatch here (the test is sensitive)', async () => {
    const unpinned = published.get('torch-unpinned-nehalem')!
    // On a real x86-64-v2 CPU the profile changes nothing: pinned or not, the same weights...
    const pinned = published.get('torch-v2-nehalem')!
    expect(unpinned.emulatedCpu).toBe('Nehalem')
    expect(readFileSync(path.join(unpinned.modelDir, 'model.safetensors'))).toEqual(
      readFileSync(path.join(pinned.modelDir, 'model.safetensors'))
    )
    // ...while this CPU's AVX2/AVX-512 kernels, uncapped, train other ones.
    const run = await verify('torch-unpinned-nehalem')
    expect(run.exitCode).toBe(1)
    expect(run.outputs.result).toBe('mismatch')
    expect(run.outputs.capability).toBeUndefined()
    expect(run.outputs['model-digest']).toBe(unpinned.modelRoot)
    expect(run.outputs['reproduced-digest']).toMatch(/^[0-9a-f]{64}$/)
    expect(run.outputs['reproduced-digest']).not.toBe(unpinned.modelRoot)
    expect(run.report!.cpuDependence).toBe(UNPINNED_ISA_NOTE)
    expect(run.summary).toContain('model.safetensors')
  }, 600_000)

  it('the NumPy tiny model, unpinned, published on an emulated Nehalem → verified (portable)', async () => {
    const model = published.get('tiny-nehalem')!
    expect(model.emulatedCpu).toBe('Nehalem')
    const run = await verify('tiny-nehalem')
    expectVerified(run, model)
    expect(run.report!.cpuDependence).toBe(UNPINNED_ISA_NOTE)
  }, 600_000)
})
