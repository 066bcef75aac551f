import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { repoRoot } from '../helpers/paths.js'
import { describeRequiring } from '../helpers/requirements.js'

const exampleDir = path.join(repoRoot, 'examples/tiny-model')
const weightNames = ['W1', 'W2', 'b1', 'b2']

/**
 * The host's Python 3 with NumPy, by its real path (a pyenv shim needs the user's HOME);
 * '' when there is none.
 */
function findPython(): string {
  try {
    const script = 'import sys, numpy; print(sys.executable)'
    return execFileSync('python3', ['-c', script], { encoding: 'utf8', stdio: 'pipe' }).trim()
  } catch {
    return ''
  }
}

const python = findPython()

/** The container contract's environment (docs/protocol.md section 4), nothing from the runner's. */
function contractEnv(home: string, seed: string): NodeJS.ProcessEnv {
  return {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    SOURCE_DATE_EPOCH: '1700000000',
    TZ: 'UTC',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    PYTHONHASHSEED: '0',
    OMP_NUM_THREADS: '1',
    MKL_NUM_THREADS: '1',
    OPENBLAS_NUM_THREADS: '1',
    SEED: seed
  }
}

function filesOf(dir: string): Map<string, Buffer> {
  const names = readdirSync(dir).sort()
  return new Map(names.map(name => [name, readFileSync(path.join(dir, name))]))
}

/** The raw data of a version 1.0 .npy file: magic, version, u16 LE header length, header. */
function npyData(file: Buffer): Buffer {
  expect(file.subarray(0, 8)).toEqual(Buffer.from('\x93NUMPY\x01\x00', 'latin1'))
  return file.subarray(10 + file.readUInt16LE(8))
}

interface SafetensorsEntry {
  dtype: string
  shape: number[]
  data_offsets: [number, number]
}

describeRequiring(
  'examples/tiny-model',
  () => python !== '',
  'python3 with numpy is required in CI (apt-get install python3-numpy)',
  () => {
    let work: string

    const run = (args: string[], seed = '0'): string =>
      execFileSync(python, args, {
        cwd: exampleDir,
        env: contractEnv(work, seed),
        encoding: 'utf8',
        timeout: 60_000
      })
    const makeDataset = (dir: string): Map<string, Buffer> => {
      run(['make_dataset.py', dir])
      return filesOf(dir)
    }
    const train = (out: string, seed = '0'): { log: string; files: Map<string, Buffer> } => {
      const log = run(
        ['train.py', '--data', path.join(work, 'data'), '--out', path.join(work, out)],
        seed
      )
      return { log, files: filesOf(path.join(work, out)) }
    }

    let dataset: Map<string, Buffer>
    let first: { log: string; files: Map<string, Buffer> }
    let second: { log: string; files: Map<string, Buffer> }

    beforeAll(() => {
      work = mkdtempSync(path.join(os.tmpdir(), 'tiny-model-'))
      dataset = makeDataset(path.join(work, 'data'))
      first = train('out-a')
      second = train('out-b')
    })
    afterAll(() => rmSync(work, { recursive: true, force: true }))

    it('generates the same data set bytes every time', () => {
      expect([...dataset.keys()]).toEqual(['test.csv', 'train.csv'])
      const again = makeDataset(path.join(work, 'data-again'))
      expect(again).toEqual(dataset)
      const rows = dataset.get('train.csv')!.toString('ascii').trimEnd().split('\n')
      expect(rows[0]).toBe('x0,x1,x2,x3,x4,x5,x6,x7,label')
      expect(new Set(rows.slice(1).map(row => row.split(',')[8]))).toEqual(new Set(['0', '1', '2']))
    })

    it('trains to the same bytes twice under the contract environment', () => {
      expect([...first.files.keys()]).toEqual([
        'W1.npy',
        'W2.npy',
        'b1.npy',
        'b2.npy',
        'config.json',
        'model.safetensors'
      ])
      expect(second.files).toEqual(first.files)
    })

    it('really trains: the loss falls and the accuracy is far above chance', () => {
      const losses = [...first.log.matchAll(/loss (\d+\.\d+)/g)].map(match => Number(match[1]))
      expect(losses.length).toBeGreaterThan(10)
      expect(losses[losses.length - 1]).toBeLessThan(losses[0] / 5)
      const config = JSON.parse(first.files.get('config.json')!.toString('utf8'))
      expect(config.metrics.train_accuracy).toBeGreaterThan(0.9)
      expect(config.metrics.test_accuracy).toBeGreaterThan(0.9)
    })

    it('takes its seed from SEED', () => {
      const other = train('out-seed-1', '1')
      expect(other.files.get('W1.npy')).not.toEqual(first.files.get('W1.npy'))
    })

    it('writes .npy files numpy loads without pickle, shaped as config.json says', () => {
      const shapes = JSON.parse(
        run([
          '-c',
          'import json, sys, numpy\n' +
            'arrays = {n: numpy.load(sys.argv[1] + "/" + n + ".npy", allow_pickle=False) for n in sys.argv[2:]}\n' +
            'print(json.dumps({n: [a.dtype.str, list(a.shape)] for n, a in arrays.items()}))',
          path.join(work, 'out-a'),
          ...weightNames
        ])
      )
      const config = JSON.parse(first.files.get('config.json')!.toString('utf8'))
      const [inputs, hidden, classes] = config.layers
      expect(shapes).toEqual({
        W1: ['<f4', [inputs, hidden]],
        W2: ['<f4', [hidden, classes]],
        b1: ['<f4', [hidden]],
        b2: ['<f4', [classes]]
      })
    })

    it('writes a safetensors file whose header and data match the .npy weights', () => {
      const file = first.files.get('model.safetensors')!
      const headerLength = Number(file.readBigUInt64LE(0))
      expect(headerLength % 8).toBe(0)
      const headerText = file.subarray(8, 8 + headerLength).toString('utf8')
      const json = headerText.trimEnd()
      expect(headerText.length - json.length).toBeLessThan(8)
      expect(JSON.stringify(JSON.parse(json))).toBe(json)
      const { __metadata__: metadata, ...tensors } = JSON.parse(json) as Record<
        string,
        SafetensorsEntry
      >
      expect(metadata).toEqual({ format: 'numpy', model: 'tiny-model-mlp' })
      expect(Object.keys(tensors)).toEqual(weightNames)

      const data = file.subarray(8 + headerLength)
      let offset = 0
      for (const name of weightNames) {
        const {
          dtype,
          shape,
          data_offsets: [start, end]
        } = tensors[name]
        expect(dtype).toBe('F32')
        expect(start).toBe(offset)
        expect(end - start).toBe(4 * shape.reduce((a, b) => a * b, 1))
        expect(data.subarray(start, end)).toEqual(npyData(first.files.get(`${name}.npy`)!))
        offset = end
      }
      expect(offset).toBe(data.length)
    })
  }
)
