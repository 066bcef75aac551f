// The PyTorch example in its real image: a one-run training and the same training as 8 segments
// (PROTOCOL.md section 9), each run a real `docker run` under the container contract.
import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import type { ImageRef } from '../../src/protocol/ledger.js'
import { normalizedEnv } from '../../src/protocol/contract-env.js'
import { describeDocker } from '../helpers/docker.js'
import { repoRoot } from '../helpers/paths.js'
import { trainerImage } from '../helpers/trainer-image.js'

const execFileAsync = promisify(execFile)
const exampleDir = path.join(repoRoot, 'examples/torch-cnn')
const SEGMENTS = 8
/** 2 epochs of 50 steps: segment 2 resumes mid-epoch, segment 5 at an epoch's start. */
const EPOCHS = '2'
const TOTAL_STEPS = 100
const STATE_FILES = [
  'config.json',
  'model.safetensors',
  'optimizer.safetensors',
  'progress.json',
  'rng.safetensors'
]
const WEIGHTS = [
  'conv1.bias',
  'conv1.weight',
  'conv2.bias',
  'conv2.weight',
  'fc1.bias',
  'fc1.weight',
  'fc2.bias',
  'fc2.weight'
]

interface TrainRun {
  code: number
  log: string
  files: Map<string, Buffer>
}

interface SafetensorsEntry {
  dtype: string
  shape: number[]
  data_offsets: [number, number]
}

function filesOf(dir: string): Map<string, Buffer> {
  return new Map(
    readdirSync(dir)
      .sort()
      .map(name => [name, readFileSync(path.join(dir, name))])
  )
}

/** The header of a safetensors file, after checking its framing: u64 LE length, padded JSON. */
function safetensorsHeader(file: Buffer): Record<string, SafetensorsEntry> {
  const length = Number(file.readBigUInt64LE(0))
  expect(length % 8).toBe(0)
  const text = file.subarray(8, 8 + length).toString('ascii')
  const json = text.trimEnd()
  expect(text.length - json.length).toBeLessThan(8)
  // Sorted keys, no spaces: the bytes are a function of the tensors alone.
  const parsed = JSON.parse(json) as Record<string, SafetensorsEntry>
  expect(JSON.stringify(parsed)).toBe(json)
  expect(Object.keys(parsed)).toEqual(Object.keys(parsed).sort())
  let offset = 0
  const tensors = Object.entries(parsed).filter(([name]) => name !== '__metadata__')
  for (const [, entry] of tensors) {
    expect(entry.data_offsets[0]).toBe(offset)
    offset = entry.data_offsets[1]
  }
  expect(8 + length + offset).toBe(file.length)
  return parsed
}

describeDocker('examples/torch-cnn in its image (python3-torch 1.13.1)', () => {
  let work: string
  let image: ImageRef
  let oneRun: TrainRun
  const segments: TrainRun[] = []

  /** One `docker run` of train.py under the contract: read-only root, uid 1000, no network. */
  const train = async (
    name: string,
    segment?: { index: number; prev?: string }
  ): Promise<TrainRun> => {
    const out = path.join(work, name)
    mkdirSync(out)
    chmodSync(out, 0o777)
    const env = {
      ...normalizedEnv({ cpus: 1, sourceDateEpoch: 1700000000 }),
      EPOCHS,
      ...(segment && {
        VERIFY_MODEL_SEGMENT: String(segment.index),
        VERIFY_MODEL_SEGMENTS: String(SEGMENTS)
      })
    }
    const args = [
      'run',
      '--rm',
      '--network',
      'none',
      '--read-only',
      '--tmpfs',
      '/tmp',
      '--user',
      '1000:1000',
      '--cpuset-cpus',
      '0',
      ...Object.entries(env).flatMap(([key, value]) => ['-e', `${key}=${value}`]),
      '-v',
      `${exampleDir}:/src:ro`,
      '-v',
      `${path.join(work, 'data')}:/data:ro`,
      ...(segment?.prev ? ['-v', `${segment.prev}:/prev:ro`] : []),
      '-v',
      `${out}:/out`,
      '-w',
      '/src',
      image.reference,
      'python3',
      'train.py',
      '--data',
      '/data',
      '--out',
      '/out'
    ]
    const result = await execFileAsync('docker', args, { timeout: 300_000 }).then(
      ({ stdout, stderr }) => ({ code: 0, log: stdout + stderr }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({
        code: typeof error.code === 'number' ? error.code : -1,
        log: `${error.stdout ?? ''}${error.stderr ?? ''}`
      })
    )
    return { ...result, files: filesOf(out) }
  }

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'torch-cnn-'))
    chmodSync(work, 0o755)
    execFileSync('python3', [path.join(exampleDir, 'make_dataset.py'), path.join(work, 'data')])
    image = await trainerImage('torch-cnn')
    oneRun = await train('one-run')
    for (let index = 1; index <= SEGMENTS; index++) {
      const prev = index > 1 ? path.join(work, `segment-${index - 1}`) : undefined
      segments.push(await train(`segment-${index}`, { index, prev }))
      expect(segments.at(-1)!.code).toBe(0)
    }
  }, 1_800_000)
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('trains: the loss falls and the accuracy is far above chance', () => {
    expect(oneRun.code).toBe(0)
    const losses = [...oneRun.log.matchAll(/mean batch loss (\d+\.\d+)/g)].map(m => Number(m[1]))
    expect(losses).toHaveLength(2)
    expect(losses[1]).toBeLessThan(losses[0])
    const config = JSON.parse(oneRun.files.get('config.json')!.toString('utf8'))
    expect(config.metrics.train_accuracy).toBeGreaterThan(0.9)
    expect(config.metrics.test_accuracy).toBeGreaterThan(0.9)
    expect(config.training).toMatchObject({ epochs: 2, steps: TOTAL_STEPS, steps_done: 100 })
    expect(config.parameters).toBeGreaterThan(1000)
    expect(config.parameters).toBeLessThan(10000)
  })

  it('8 segments, each resuming from /prev, end in the one-run model bit for bit', () => {
    const last = segments[SEGMENTS - 1].files
    expect(last.get('model.safetensors')).toEqual(oneRun.files.get('model.safetensors'))
    expect(last.get('config.json')).toEqual(oneRun.files.get('config.json'))
    // and the whole state, optimizer and generators included
    expect(last).toEqual(oneRun.files)
  })

  it('each segment leaves its complete state as plain files and trains its share of the steps', () => {
    segments.forEach((run, i) => {
      expect([...run.files.keys()]).toEqual(STATE_FILES)
      const progress = JSON.parse(run.files.get('progress.json')!.toString('ascii'))
      const step = Math.floor(((i + 1) * TOTAL_STEPS) / SEGMENTS)
      expect(progress).toEqual({
        epoch: Math.floor(step / 50),
        format: 1,
        position: (step % 50) * 32,
        seed: 0,
        step,
        total_steps: TOTAL_STEPS
      })
      expect(run.log).toContain(
        `segment ${i + 1}/${SEGMENTS}: steps ${Math.floor((i * TOTAL_STEPS) / SEGMENTS)}..${step}`
      )
      // Intermediate weights differ from segment to segment: each run really trained.
      if (i > 0)
        expect(run.files.get('model.safetensors')).not.toEqual(
          segments[i - 1].files.get('model.safetensors')
        )
    })
  })

  it('writes safetensors without pickle: sorted header, float32 weights, the optimizer and RNG state', () => {
    const model = safetensorsHeader(oneRun.files.get('model.safetensors')!)
    expect(model.__metadata__).toEqual({ format: 'pt', model: 'torch-cnn' })
    const weights = Object.fromEntries(
      Object.entries(model).filter(([name]) => name !== '__metadata__')
    )
    expect(Object.keys(weights)).toEqual(WEIGHTS)
    expect(Object.values(weights).every(entry => entry.dtype === 'F32')).toBe(true)
    expect(weights['conv2.weight'].shape).toEqual([16, 8, 3, 3])

    const optimizer = safetensorsHeader(oneRun.files.get('optimizer.safetensors')!)
    for (const name of WEIGHTS)
      for (const key of ['exp_avg', 'exp_avg_sq', 'step'])
        expect(optimizer[`${key}.${name}`]?.dtype).toBe('F32')
    const rng = safetensorsHeader(oneRun.files.get('rng.safetensors')!)
    expect(rng.torch_cpu.dtype).toBe('U8')
    expect(rng.shuffle.dtype).toBe('U8')
    expect(rng.epoch_order).toMatchObject({ dtype: 'I64', shape: [1600] })
    // No pickle anywhere: no file starts with a pickle protocol header (0x80) or a zip (torch.save).
    for (const file of oneRun.files.values()) {
      expect(file[0]).not.toBe(0x80)
      expect(file.subarray(0, 2).toString('latin1')).not.toBe('PK')
    }
  })

  it('a segment given the wrong /prev fails, naming the state it expected', async () => {
    const wrong = await train('segment-3-from-1', { index: 3, prev: path.join(work, 'segment-1') })
    expect(wrong.code).not.toBe(0)
    expect(wrong.log).toContain('progress.json is')
    expect(wrong.log).toContain("'step': 25")
    expect(wrong.files.size).toBe(0)
  }, 300_000)
})
