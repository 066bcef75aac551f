import type { FileHandle } from 'node:fs/promises'
import { elementCount, type ElementType, type Parsed } from './tensor-diff.js'

/** The NPY header (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html). */
export interface NpyHeader {
  /** The `descr` string, e.g. `<f4`. */
  dtype: string
  shape: number[]
  fortranOrder: boolean
  /** Where the array data starts. */
  dataOffset: number
  /** How `dtype` decodes. */
  type: ElementType
}

const MAGIC = Buffer.from('\x93NUMPY', 'latin1')
/** numpy itself refuses headers over 10 000 bytes by default; allow some slack, no more. */
const MAX_NPY_HEADER = 64 * 1024
/** Bytes to read from the start of a file to be sure to hold any header we accept. */
const NPY_PREFIX_BYTES = 12 + MAX_NPY_HEADER

const NPY_KINDS: Record<string, ElementType['kind']> = {
  f: 'float',
  i: 'int',
  u: 'uint',
  b: 'bool'
}
const NPY_SIZES: Record<string, number[]> = {
  f: [2, 4, 8],
  i: [1, 2, 4, 8],
  u: [1, 2, 4, 8],
  b: [1]
}

/** The element type of a supported `descr`; object arrays are refused, never unpickled. */
export function npyElementType(descr: string): Parsed<ElementType> {
  const match = /^([<>|])([fiub])(\d)$/.exec(descr)
  const size = match ? Number(match[3]) : 0
  if (!match || !NPY_SIZES[match[2]].includes(size) || (match[1] === '|' && size !== 1)) {
    const why = descr.includes('O') ? ' (object arrays are never unpickled)' : ''
    return { ok: false, reason: `unsupported dtype ${quote(descr)}${why}` }
  }
  return { ok: true, value: { kind: NPY_KINDS[match[2]], size, littleEndian: match[1] !== '>' } }
}

/**
 * Parses the header at the start of an NPY file (`start` holds at least the file's first
 * NPY_PREFIX_BYTES bytes, or all of it) and checks the data size the header implies.
 */
export function parseNpyHeader(start: Uint8Array, fileSize: number): Parsed<NpyHeader> {
  const bytes = Buffer.from(start.buffer, start.byteOffset, start.byteLength)
  if (bytes.length < 10 || !bytes.subarray(0, 6).equals(MAGIC)) {
    return { ok: false, reason: 'no \\x93NUMPY magic' }
  }
  const major = bytes[6]
  if (major < 1 || major > 3 || bytes[7] !== 0) {
    return { ok: false, reason: `unknown format version ${major}.${bytes[7]}` }
  }
  const lengthBytes = major === 1 ? 2 : 4
  if (bytes.length < 8 + lengthBytes) return { ok: false, reason: 'truncated header length' }
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8)
  const dataOffset = 8 + lengthBytes + headerLength
  if (headerLength > MAX_NPY_HEADER) {
    return { ok: false, reason: `header length ${headerLength} exceeds ${MAX_NPY_HEADER}` }
  }
  if (dataOffset > fileSize || dataOffset > bytes.length) {
    return { ok: false, reason: `header length ${headerLength} runs past the end of the file` }
  }
  const headerBytes = bytes.subarray(8 + lengthBytes, dataOffset)
  let text: string
  try {
    text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(headerBytes)
  } catch {
    return { ok: false, reason: 'header is not valid UTF-8' }
  }
  const dict = parseHeaderDict(text)
  if (!dict.ok) return dict
  const { descr, fortran_order: fortranOrder, shape } = dict.value
  const type = npyElementType(descr)
  if (!type.ok) return type
  const dataBytes = fileSize - dataOffset
  const count = elementCount(shape, Math.floor(dataBytes / type.value.size))
  if (count === null) {
    return {
      ok: false,
      reason: `shape ${formatNpyShape(shape)} of ${descr} needs more than the ${dataBytes} data bytes in the file`
    }
  }
  if (count * type.value.size !== dataBytes) {
    return {
      ok: false,
      reason: `shape ${formatNpyShape(shape)} of ${descr} needs ${count * type.value.size} data bytes, the file has ${dataBytes}`
    }
  }
  return { ok: true, value: { dtype: descr, shape, fortranOrder, dataOffset, type: type.value } }
}

export async function readNpyHeader(
  handle: FileHandle,
  fileSize: number
): Promise<Parsed<NpyHeader>> {
  const start = Buffer.alloc(Math.min(fileSize, NPY_PREFIX_BYTES))
  const { bytesRead } = await handle.read(start, 0, start.length, 0)
  return parseNpyHeader(start.subarray(0, bytesRead), fileSize)
}

/** A shape written the way numpy prints it: `(3, 4)`, `(3,)`, `()`. */
export function formatNpyShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`
}

interface HeaderDict {
  descr: string
  fortran_order: boolean
  shape: number[]
}

type PyValue = string | boolean | number | PyValue[]

/**
 * A strict parser for the one dict literal an NPY header holds: string keys; values that are
 * strings, True/False, non-negative integers or tuples of those. Never `eval`.
 */
function parseHeaderDict(text: string): Parsed<HeaderDict> {
  let at = 0
  const fail = (what: string): never => {
    throw new SyntaxError(`header dict: ${what} at character ${at}`)
  }
  const skipSpace = (): void => {
    while (at < text.length && ' \t\n\r'.includes(text[at])) at++
  }
  const eat = (token: string): boolean => {
    skipSpace()
    if (!text.startsWith(token, at)) return false
    at += token.length
    return true
  }
  const parseString = (): string => {
    const quoteChar = text[at]
    const end = text.indexOf(quoteChar, at + 1)
    if (end < 0) fail('unterminated string')
    const value = text.slice(at + 1, end)
    if (/[\\\n]/.test(value)) fail('escape or newline in string')
    at = end + 1
    return value
  }
  const parseValue = (): PyValue => {
    skipSpace()
    const c = text[at]
    if (c === "'" || c === '"') return parseString()
    if (eat('True')) return true
    if (eat('False')) return false
    if (eat('(')) return parseTuple()
    const digits = /^\d+L?/.exec(text.slice(at, at + 32))
    if (!digits) return fail('expected a string, True, False, an integer or a tuple')
    at += digits[0].length
    const value = Number(digits[0].replace('L', ''))
    return Number.isSafeInteger(value) ? value : fail('integer too large')
  }
  const parseTuple = (): PyValue[] => {
    const items: PyValue[] = []
    while (!eat(')')) {
      items.push(parseValue())
      if (eat(')')) {
        if (items.length === 1) fail('(x) is not a tuple')
        return items
      }
      if (!eat(',')) fail("expected ',' or ')'")
    }
    return items
  }
  try {
    const entries = new Map<string, PyValue>()
    if (!eat('{')) fail("expected '{'")
    while (!eat('}')) {
      skipSpace()
      if (text[at] !== "'" && text[at] !== '"') fail('expected a string key')
      const key = parseString()
      if (entries.has(key)) fail(`duplicate key ${quote(key)}`)
      if (!eat(':')) fail("expected ':'")
      entries.set(key, parseValue())
      if (eat('}')) break
      if (!eat(',')) fail("expected ',' or '}'")
    }
    skipSpace()
    if (at !== text.length) fail('trailing characters')
    return headerFields(entries)
  } catch (error) {
    return { ok: false, reason: (error as Error).message }
  }
}

function headerFields(entries: Map<string, PyValue>): Parsed<HeaderDict> {
  const keys = [...entries.keys()].sort()
  if (keys.join() !== 'descr,fortran_order,shape') {
    return {
      ok: false,
      reason: `header keys are ${keys.map(quote).join(', ')}, expected descr, fortran_order, shape`
    }
  }
  const descr = entries.get('descr')
  const fortranOrder = entries.get('fortran_order')
  const shape = entries.get('shape')
  if (typeof descr !== 'string')
    return { ok: false, reason: 'descr is not a string (structured dtype?)' }
  if (typeof fortranOrder !== 'boolean') return { ok: false, reason: 'fortran_order is not a bool' }
  if (!Array.isArray(shape) || !shape.every(d => typeof d === 'number')) {
    return { ok: false, reason: 'shape is not a tuple of integers' }
  }
  return { ok: true, value: { descr, fortran_order: fortranOrder, shape: shape as number[] } }
}

function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)
}
