import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { describeRequiring } from '../helpers/requirements.js'

/** Typed values written as little- or big-endian bytes with a DataView. */
export function encode(
  kind: 'f2' | 'f4' | 'f8' | 'i1' | 'i2' | 'i4' | 'i8' | 'u1' | 'u2' | 'u4' | 'u8' | 'bf2',
  values: readonly (number | bigint)[],
  littleEndian = true
): Buffer {
  const size = Number(kind.slice(-1))
  const view = new DataView(new ArrayBuffer(values.length * size))
  values.forEach((value, i) => {
    const at = i * size
    const n = Number(value)
    switch (kind) {
      case 'f2':
      case 'bf2':
        view.setUint16(at, n, littleEndian) // raw bits: the tests give the encoded half floats
        break
      case 'f4':
        view.setFloat32(at, n, littleEndian)
        break
      case 'f8':
        view.setFloat64(at, n, littleEndian)
        break
      case 'i1':
        view.setInt8(at, n)
        break
      case 'u1':
        view.setUint8(at, n)
        break
      case 'i2':
        view.setInt16(at, n, littleEndian)
        break
      case 'u2':
        view.setUint16(at, n, littleEndian)
        break
      case 'i4':
        view.setInt32(at, n, littleEndian)
        break
      case 'u4':
        view.setUint32(at, n, littleEndian)
        break
      case 'i8':
        view.setBigInt64(at, BigInt(value), littleEndian)
        break
      case 'u8':
        view.setBigUint64(at, BigInt(value), littleEndian)
        break
    }
  })
  return Buffer.from(view.buffer)
}

export function npyShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`
}

/** The NPY header bytes as numpy writes them: dict literal, space padding to 64, newline. */
export function npyHeader(
  descr: string,
  shape: readonly number[],
  options: { fortranOrder?: boolean; version?: 1 | 2 | 3; dict?: string } = {}
): Buffer {
  const version = options.version ?? 1
  const dict =
    options.dict ??
    `{'descr': '${descr}', 'fortran_order': ${options.fortranOrder ? 'True' : 'False'}, 'shape': ${npyShape(shape)}, }`
  const prefixLength = version === 1 ? 10 : 12
  const unpadded = prefixLength + Buffer.byteLength(dict) + 1
  const text = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n'
  const prefix = Buffer.alloc(prefixLength)
  Buffer.from('\x93NUMPY', 'latin1').copy(prefix)
  prefix[6] = version
  if (version === 1) prefix.writeUInt16LE(Buffer.byteLength(text), 8)
  else prefix.writeUInt32LE(Buffer.byteLength(text), 8)
  return Buffer.concat([prefix, Buffer.from(text, version === 3 ? 'utf8' : 'latin1')])
}

export function npyFile(
  descr: string,
  shape: readonly number[],
  data: Buffer,
  options: { fortranOrder?: boolean; version?: 1 | 2 | 3 } = {}
): Buffer {
  return Buffer.concat([npyHeader(descr, shape, options), data])
}

export interface TensorSpec {
  name: string
  dtype: string
  shape: number[]
  data: Buffer
}

/** A safetensors file per the format: u64 LE header length, JSON header, byte buffer. */
export function safetensorsFile(tensors: TensorSpec[], metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {}
  let offset = 0
  for (const tensor of tensors) {
    header[tensor.name] = {
      dtype: tensor.dtype,
      shape: tensor.shape,
      data_offsets: [offset, offset + tensor.data.length]
    }
    offset += tensor.data.length
  }
  return safetensorsRaw(JSON.stringify(header), Buffer.concat(tensors.map(t => t.data)))
}

export function safetensorsRaw(json: string, data: Buffer): Buffer {
  const text = Buffer.from(json)
  const length = Buffer.alloc(8)
  length.writeBigUInt64LE(BigInt(text.length))
  return Buffer.concat([length, text, data])
}

export async function withTempDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'compare-'))
  try {
    return await body(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Writes the two sides of a comparison into `dir`; returns their paths. */
export async function writePair(
  dir: string,
  name: string,
  expected: Buffer,
  actual: Buffer
): Promise<[string, string]> {
  const [e, a] = [path.join(dir, `expected-${name}`), path.join(dir, `actual-${name}`)]
  await writeFile(e, expected)
  await writeFile(a, actual)
  return [e, a]
}

const NUMPY_HINT = 'python3 with numpy is required in CI (apt-get install python3-numpy)'

function numpyAvailable(): boolean {
  try {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Runs with real numpy; skipped where numpy is missing, except under CI, where it must exist. */
export function describeNumpy(name: string, body: () => void): void {
  describeRequiring(name, numpyAvailable, NUMPY_HINT, body)
}

/** Runs a Python script with arguments (argv array, never a shell) and returns its stdout. */
export function python(script: string, ...args: string[]): string {
  return execFileSync('python3', ['-c', script, ...args], { encoding: 'utf8' })
}
