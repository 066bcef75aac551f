import type { FileHandle } from 'node:fs/promises'
import { elementCount, type ElementType, type Parsed } from './tensor-diff.js'

export interface SafetensorsTensor {
  dtype: string
  shape: number[]
  /** Absolute file offsets of the tensor's bytes: [begin, end). */
  begin: number
  end: number
  /** Null for a dtype this module does not decode (its bytes are still compared). */
  type: ElementType | null
}

/** The header of a safetensors file (https://github.com/huggingface/safetensors#format). */
export interface SafetensorsHeader {
  metadata: Map<string, string>
  tensors: Map<string, SafetensorsTensor>
  /** Where the byte buffer starts: 8 + header length. */
  dataOffset: number
}

const MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024

const DTYPES: Record<string, Omit<ElementType, 'littleEndian'>> = {
  F64: { kind: 'float', size: 8 },
  F32: { kind: 'float', size: 4 },
  F16: { kind: 'float', size: 2 },
  BF16: { kind: 'bfloat', size: 2 },
  I64: { kind: 'int', size: 8 },
  I32: { kind: 'int', size: 4 },
  I16: { kind: 'int', size: 2 },
  I8: { kind: 'int', size: 1 },
  U64: { kind: 'uint', size: 8 },
  U32: { kind: 'uint', size: 4 },
  U16: { kind: 'uint', size: 2 },
  U8: { kind: 'uint', size: 1 },
  BOOL: { kind: 'bool', size: 1 }
}

export function safetensorsElementType(dtype: string): ElementType | null {
  return Object.hasOwn(DTYPES, dtype) ? { ...DTYPES[dtype], littleEndian: true } : null
}

export async function readSafetensorsHeader(
  handle: FileHandle,
  fileSize: number
): Promise<Parsed<SafetensorsHeader>> {
  if (fileSize < 8)
    return { ok: false, reason: `${fileSize} bytes, shorter than the header length` }
  const prefix = Buffer.alloc(8)
  await handle.read(prefix, 0, 8, 0)
  const declared = prefix.readBigUInt64LE(0)
  if (declared > BigInt(Math.min(MAX_SAFETENSORS_HEADER, fileSize - 8))) {
    return {
      ok: false,
      reason: `header length ${declared} exceeds the file or the ${MAX_SAFETENSORS_HEADER}-byte limit`
    }
  }
  const json = Buffer.alloc(Number(declared))
  const { bytesRead } = await handle.read(json, 0, json.length, 8)
  if (bytesRead !== json.length) return { ok: false, reason: 'header shorter than declared' }
  return parseSafetensorsHeader(json, fileSize)
}

/** Validates the JSON header; `json` is the header's bytes, which start at byte 8 of the file. */
export function parseSafetensorsHeader(
  json: Uint8Array,
  fileSize: number
): Parsed<SafetensorsHeader> {
  const dataOffset = 8 + json.length
  let document: unknown
  try {
    document = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json))
  } catch (error) {
    return { ok: false, reason: `header is not JSON: ${(error as Error).message}` }
  }
  if (!isObject(document)) return { ok: false, reason: 'header is not a JSON object' }
  const header: SafetensorsHeader = { metadata: new Map(), tensors: new Map(), dataOffset }
  for (const [name, value] of Object.entries(document)) {
    if (name === '__metadata__') {
      const metadata = parseMetadata(value)
      if (!metadata.ok) return metadata
      header.metadata = metadata.value
      continue
    }
    const tensor = parseTensor(value, dataOffset, fileSize)
    if (!tensor.ok) return { ok: false, reason: `tensor ${JSON.stringify(name)}: ${tensor.reason}` }
    header.tensors.set(name, tensor.value)
  }
  return { ok: true, value: header }
}

function parseMetadata(value: unknown): Parsed<Map<string, string>> {
  if (!isObject(value)) return { ok: false, reason: '__metadata__ is not an object' }
  const entries = Object.entries(value)
  if (!entries.every(([, v]) => typeof v === 'string')) {
    return { ok: false, reason: '__metadata__ values must be strings' }
  }
  return { ok: true, value: new Map(entries as [string, string][]) }
}

function parseTensor(
  value: unknown,
  dataOffset: number,
  fileSize: number
): Parsed<SafetensorsTensor> {
  if (!isObject(value)) return { ok: false, reason: 'not an object' }
  const { dtype, shape, data_offsets: offsets } = value
  if (typeof dtype !== 'string') return { ok: false, reason: 'dtype is not a string' }
  if (!isIntegerArray(shape)) return { ok: false, reason: 'shape is not an array of integers' }
  if (!isIntegerArray(offsets) || offsets.length !== 2 || offsets[0] > offsets[1]) {
    return { ok: false, reason: 'data_offsets is not [begin, end] with begin <= end' }
  }
  const [begin, end] = [dataOffset + offsets[0], dataOffset + offsets[1]]
  if (end > fileSize) {
    return { ok: false, reason: `data_offsets end ${offsets[1]} runs past the end of the file` }
  }
  const type = safetensorsElementType(dtype)
  if (type !== null) {
    const length = end - begin
    const count = elementCount(shape, Math.floor(length / type.size))
    if (count === null || count * type.size !== length) {
      return {
        ok: false,
        reason: `shape [${shape.join(', ')}] of ${dtype} does not fit data_offsets [${offsets[0]}, ${offsets[1]}]`
      }
    }
  }
  return { ok: true, value: { dtype, shape, begin, end, type } }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isIntegerArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every(n => Number.isSafeInteger(n) && n >= 0)
}
