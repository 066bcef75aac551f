import { clip } from '../text/sanitize.js'
import { constants, type FileHandle, open, stat } from 'node:fs/promises'
import path from 'node:path'
import { formatJsonPath, isJsonObject } from '../protocol/strict-json.js'
import { comparePaths, type ManifestDiff } from './manifest-diff.js'
import { formatNpyShape, readNpyHeader, type NpyHeader } from './npy.js'
import {
  readSafetensorsHeader,
  type SafetensorsHeader,
  type SafetensorsTensor
} from './safetensors.js'
import {
  compareElements,
  firstDifferentByte,
  type ByteBudget,
  type ElementStats,
  type Parsed
} from './tensor-diff.js'

export interface ExplainOptions {
  /** Most tensors reported per safetensors file; the rest are counted in `moreTensors`. */
  maxTensors?: number
  /** Most bytes read from each of the two files for the comparison. */
  maxBytes?: number
}

export interface MismatchOptions extends ExplainOptions {
  /** Most changed files explained. */
  maxFiles?: number
}

const DEFAULT_MAX_TENSORS = 20
const DEFAULT_MAX_BYTES = 256 * 1024 * 1024
const DEFAULT_MAX_FILES = 20
const DEFAULT_MAX_KEYS = 20
/** A larger .json file is compared by bytes. */
const MAX_JSON_BYTES = 16 * 1024 * 1024
/** Deeper values are reported as one changed value. */
const MAX_JSON_DEPTH = 64

interface FilePair {
  name: string
  expectedSize: number
  actualSize: number
  /** The byte budget ran out before the comparison finished. */
  truncated: boolean
  /** Why the file was compared the way it was, when that is worth saying. */
  note?: string
}

export interface BytesExplanation extends FilePair {
  kind: 'bytes'
  /** Null when no difference was found (identical, or the budget ran out first). */
  firstDifferentOffset: number | null
}

export interface NpyExplanation extends FilePair {
  kind: 'npy'
  expected: NpyHeader
  actual: NpyHeader
  /** e.g. `shape (3, 4) → (4, 3)`; when any, the elements are not compared. */
  headerChanges: string[]
  elements: ElementStats | null
}

export interface TensorSummary {
  dtype: string
  shape: number[]
}

export interface TensorExplanation {
  name: string
  change: 'added' | 'removed' | 'changed'
  expected?: TensorSummary
  actual?: TensorSummary
  /** e.g. `dtype F32 → F64`; when any, the elements are not compared. */
  headerChanges: string[]
  elements: ElementStats | null
  /** For a dtype that is not decoded: the first differing byte within the tensor. */
  firstDifferentByte?: number
}

export interface SafetensorsExplanation extends FilePair {
  kind: 'safetensors'
  /** Changes of `__metadata__` entries, e.g. `format: "pt" → "np"`. */
  metadataChanges: string[]
  /** Differing tensors (added, removed or changed) in path-byte order, at most `maxTensors`. */
  tensors: TensorExplanation[]
  /** Differing tensors beyond the cap. */
  moreTensors: number
}

export interface JsonKeyChange {
  /** The key's JSON path, e.g. `a.b[2]`; empty for the whole document. */
  path: string
  change: 'added' | 'removed' | 'changed'
  /** The values as compact JSON, cut at 60 characters. */
  expected?: string
  actual?: string
}

export interface JsonExplanation extends FilePair {
  kind: 'json'
  /** The keys whose values differ, in document order, at most `maxKeys`. */
  keys: JsonKeyChange[]
  /** Differing keys beyond the cap. */
  moreKeys: number
}

export interface UnreadableExplanation {
  kind: 'unreadable'
  name: string
  note: string
}

export type FileExplanation =
  | BytesExplanation
  | NpyExplanation
  | SafetensorsExplanation
  | JsonExplanation
  | UnreadableExplanation

interface OpenFile {
  handle: FileHandle
  size: number
}

interface Comparison {
  name: string
  expected: OpenFile
  actual: OpenFile
  budget: ByteBudget
  truncated: boolean
}

/**
 * Explains how two files differ, by format: NPY arrays and safetensors tensors element by
 * element, other files by their first differing byte. Streams, reads at most `maxBytes` of each
 * file, and never throws for a malformed or hostile file.
 */
export async function explainFileDifference(
  expectedPath: string,
  actualPath: string,
  name: string,
  options: ExplainOptions = {}
): Promise<FileExplanation> {
  const opened: OpenFile[] = []
  try {
    const expected = await openRegularFile(expectedPath, opened)
    const actual = await openRegularFile(actualPath, opened)
    const comparison: Comparison = {
      name,
      expected,
      actual,
      budget: { remaining: options.maxBytes ?? DEFAULT_MAX_BYTES },
      truncated: false
    }
    const extension = path.extname(name).toLowerCase()
    if (extension === '.npy') return await explainNpy(comparison)
    if (extension === '.safetensors') {
      return await explainSafetensors(comparison, options.maxTensors ?? DEFAULT_MAX_TENSORS)
    }
    if (extension === '.json') return await explainJson(comparison, DEFAULT_MAX_KEYS)
    return await explainBytes(comparison)
  } catch (error) {
    return { kind: 'unreadable', name, note: `cannot compare: ${(error as Error).message}` }
  } finally {
    await Promise.all(opened.map(file => file.handle.close()))
  }
}

/**
 * Explains the changed files of a manifest diff, in order, at most `maxFiles` of them.
 * `actual` is the downloaded directory, or the model file itself when it is a single file.
 */
export async function explainMismatch(
  expectedDir: string,
  actual: string,
  diff: ManifestDiff,
  options: MismatchOptions = {}
): Promise<Map<string, FileExplanation>> {
  const actualIsFile = (await stat(actual)).isFile()
  const explanations = new Map<string, FileExplanation>()
  for (const change of diff.changed.slice(0, options.maxFiles ?? DEFAULT_MAX_FILES)) {
    const segments = change.path.split('/')
    if (segments.some(s => s === '' || s === '.' || s === '..')) {
      explanations.set(change.path, { kind: 'unreadable', name: change.path, note: 'unsafe path' })
      continue
    }
    const actualPath = actualIsFile ? actual : path.join(actual, ...segments)
    const expectedPath = path.join(expectedDir, ...segments)
    explanations.set(
      change.path,
      await explainFileDifference(expectedPath, actualPath, change.path, options)
    )
  }
  return explanations
}

/** explainMismatch as reports hold it: per changed file, the lines of formatExplanation. */
export async function explainMismatchLines(
  expectedDir: string,
  actual: string,
  diff: ManifestDiff,
  options: MismatchOptions = {}
): Promise<Record<string, string[]>> {
  const explanations = await explainMismatch(expectedDir, actual, diff, options)
  const noise = floatingPointNoise(diff, explanations)
  return Object.fromEntries(
    [...explanations].map(([file, explanation]) => {
      const lines = formatExplanation(explanation)
      const tensorFile = explanation.kind === 'npy' || explanation.kind === 'safetensors'
      return [file, noise !== null && tensorFile ? [...lines, `  note: ${noise}`] : lines]
    })
  )
}

/** At most this difference relative to the largest value of a tensor counts as rounding. */
export const NOISE_RELATIVE_DIFFERENCE = 1e-3
/** More than this share of the compared elements must differ: rounding spreads, edits do not. */
export const NOISE_MIN_SHARE = 0.01

/**
 * Says the mismatch looks like floating-point nondeterminism when it has the shape of one:
 * no file added or removed, every changed file an .npy or .safetensors file with only value
 * changes (no header, dtype, shape, metadata or tensor-set change), at least two differing
 * floating-point tensors, each with no NaN or infinity involved and max |a-b| ≤ 1e-3 · max |v|
 * (v: the values of either side at the differing elements), and more than 1% of the compared
 * elements differing overall. Null otherwise. Only a hint: the verdict stays mismatch.
 */
export function floatingPointNoise(
  diff: ManifestDiff,
  explanations: Map<string, FileExplanation>
): string | null {
  if (diff.added.length > 0 || diff.removed.length > 0) return null
  if (explanations.size !== diff.changed.length) return null
  const tensors: ElementStats[] = []
  for (const e of explanations.values()) {
    if (e.kind === 'npy') {
      if (e.headerChanges.length > 0 || e.elements === null) return null
      tensors.push(e.elements)
    } else if (e.kind === 'safetensors') {
      if (e.metadataChanges.length > 0 || e.tensors.length === 0) return null
      for (const t of e.tensors) {
        if (t.change !== 'changed' || t.headerChanges.length > 0 || t.elements === null) return null
        tensors.push(t.elements)
      }
    } else return null
  }
  if (tensors.length < 2) return null
  let worst = 0
  for (const t of tensors) {
    const { maxAbsDiff, maxAbsValue } = t
    if (t.nanDiffering > 0 || maxAbsDiff === null || maxAbsValue === null) return null
    if (!Number.isFinite(maxAbsValue) || maxAbsValue === 0) return null
    const relative = maxAbsDiff / maxAbsValue
    if (!(relative <= NOISE_RELATIVE_DIFFERENCE)) return null
    worst = Math.max(worst, relative)
  }
  const differing = tensors.reduce((sum, t) => sum + t.differing, 0)
  const compared = tensors.reduce((sum, t) => sum + t.compared, 0)
  if (!(differing > NOISE_MIN_SHARE * compared)) return null
  return `this looks like floating-point nondeterminism, not a targeted edit: ${tensors.length} tensors differ in ${formatPercent(differing / compared)} of their elements, each by at most ${formatNumber(worst)} of its largest value, with no NaN or infinity involved. CPU kernels, thread counts and library versions do this: pin the CPU level with build.isa and check with \`verify-model build --cross-check\` before signing. The verdict stays mismatch`
}

function formatPercent(share: number): string {
  return `${Number((share * 100).toPrecision(3))}%`
}

/** O_NOFOLLOW refuses a symlink, O_NONBLOCK keeps a FIFO from blocking the open. */
async function openRegularFile(file: string, opened: OpenFile[]): Promise<OpenFile> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  const info = await handle.stat()
  opened.push({ handle, size: info.size })
  if (!info.isFile()) throw new Error(`${file} is not a regular file`)
  return { handle, size: info.size }
}

function filePair(c: Comparison): FilePair {
  return {
    name: c.name,
    expectedSize: c.expected.size,
    actualSize: c.actual.size,
    truncated: c.truncated
  }
}

async function explainBytes(c: Comparison, note?: string): Promise<BytesExplanation> {
  const length = Math.min(c.expected.size, c.actual.size)
  const found = await firstDifferentByte(
    { handle: c.expected.handle, offset: 0 },
    { handle: c.actual.handle, offset: 0 },
    length,
    c.budget
  )
  const complete = found.offset !== null || found.compared === length
  const sizesDiffer = c.expected.size !== c.actual.size
  c.truncated ||= !complete
  return {
    kind: 'bytes',
    ...filePair(c),
    firstDifferentOffset: found.offset ?? (complete && sizesDiffer ? length : null),
    ...(note === undefined ? {} : { note })
  }
}

async function explainJson(c: Comparison, maxKeys: number): Promise<FileExplanation> {
  const sizes = [c.expected.size, c.actual.size]
  if (sizes.some(size => size > MAX_JSON_BYTES || size > c.budget.remaining))
    return explainBytes(c, 'too large to compare as JSON')
  c.budget.remaining -= Math.max(c.expected.size, c.actual.size)
  const [expected, actual] = await Promise.all([parseJsonFile(c.expected), parseJsonFile(c.actual)])
  if (!expected.ok || !actual.ok) return explainBytes(c, invalidNote('JSON', expected, actual)!)
  const keys: JsonKeyChange[] = []
  let moreKeys = 0
  diffJson(expected.value, actual.value, [], 0, change => {
    if (keys.length < maxKeys) keys.push(change)
    else moreKeys++
  })
  return {
    kind: 'json',
    ...filePair(c),
    keys,
    moreKeys,
    ...(keys.length === 0
      ? { note: 'every JSON value is equal: the formatting or the key order differs' }
      : {})
  }
}

async function parseJsonFile(file: OpenFile): Promise<Parsed<unknown>> {
  const buffer = Buffer.alloc(file.size)
  let done = 0
  while (done < file.size) {
    const { bytesRead } = await file.handle.read(buffer, done, file.size - done, done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  try {
    return { ok: true, value: JSON.parse(buffer.subarray(0, done).toString('utf8')) }
  } catch (error) {
    return { ok: false, reason: (error as Error).message }
  }
}

function diffJson(
  expected: unknown,
  actual: unknown,
  at: (string | number)[],
  depth: number,
  report: (change: JsonKeyChange) => void
): void {
  const where = formatJsonPath(at)
  const bothArrays = Array.isArray(expected) && Array.isArray(actual)
  const bothObjects = isJsonObject(expected) && isJsonObject(actual)
  if (depth < MAX_JSON_DEPTH && bothArrays) {
    const [e, a] = [expected as unknown[], actual as unknown[]]
    for (let i = 0; i < Math.max(e.length, a.length); i++) {
      if (i >= a.length)
        report({ path: formatJsonPath([...at, i]), change: 'removed', expected: jsonText(e[i]) })
      else if (i >= e.length)
        report({ path: formatJsonPath([...at, i]), change: 'added', actual: jsonText(a[i]) })
      else diffJson(e[i], a[i], [...at, i], depth + 1, report)
    }
    return
  }
  if (depth < MAX_JSON_DEPTH && bothObjects) {
    const [e, a] = [expected as Record<string, unknown>, actual as Record<string, unknown>]
    for (const key of new Set([...Object.keys(e), ...Object.keys(a)])) {
      const path = formatJsonPath([...at, key])
      if (!Object.hasOwn(a, key)) report({ path, change: 'removed', expected: jsonText(e[key]) })
      else if (!Object.hasOwn(e, key)) report({ path, change: 'added', actual: jsonText(a[key]) })
      else diffJson(e[key], a[key], [...at, key], depth + 1, report)
    }
    return
  }
  if (jsonText(expected, Infinity) !== jsonText(actual, Infinity))
    report({
      path: where,
      change: 'changed',
      expected: jsonText(expected),
      actual: jsonText(actual)
    })
}

function jsonText(value: unknown, max = 60): string {
  const text = JSON.stringify(value)
  return text.length > max ? `${text.slice(0, max)}…` : text
}

function invalidNote<T>(format: string, expected: Parsed<T>, actual: Parsed<T>): string | null {
  const reasons = [
    expected.ok ? null : `expected: ${expected.reason}`,
    actual.ok ? null : `actual: ${actual.reason}`
  ].filter(reason => reason !== null)
  return reasons.length === 0 ? null : `not a valid ${format} (${reasons.join('; ')})`
}

async function explainNpy(c: Comparison): Promise<FileExplanation> {
  const expected = await readNpyHeader(c.expected.handle, c.expected.size)
  const actual = await readNpyHeader(c.actual.handle, c.actual.size)
  if (!expected.ok || !actual.ok) return explainBytes(c, invalidNote('.npy', expected, actual)!)
  const [e, a] = [expected.value, actual.value]
  const headerChanges = [
    change('dtype', e.dtype, a.dtype),
    change('shape', formatNpyShape(e.shape), formatNpyShape(a.shape)),
    change('fortran_order', pythonBool(e.fortranOrder), pythonBool(a.fortranOrder))
  ].filter(line => line !== null)
  let elements: ElementStats | null = null
  if (headerChanges.length === 0) {
    elements = await compareElements(
      { handle: c.expected.handle, offset: e.dataOffset },
      { handle: c.actual.handle, offset: a.dataOffset },
      { type: e.type, shape: e.shape, fortranOrder: e.fortranOrder },
      (c.expected.size - e.dataOffset) / e.type.size,
      c.budget
    )
    c.truncated ||= elements.compared < elements.elements
  }
  const dataEqual = elements !== null && elements.differing === 0 && !c.truncated
  return {
    kind: 'npy',
    ...filePair(c),
    expected: e,
    actual: a,
    headerChanges,
    elements,
    ...(dataEqual
      ? { note: 'the array data is equal: the header bytes differ (padding or layout)' }
      : {})
  }
}

async function explainSafetensors(c: Comparison, maxTensors: number): Promise<FileExplanation> {
  const expected = await readSafetensorsHeader(c.expected.handle, c.expected.size)
  const actual = await readSafetensorsHeader(c.actual.handle, c.actual.size)
  if (!expected.ok || !actual.ok) {
    return explainBytes(c, invalidNote('.safetensors', expected, actual)!)
  }
  const metadataChanges = diffMetadata(expected.value.metadata, actual.value.metadata, maxTensors)
  const names = [...new Set([...expected.value.tensors.keys(), ...actual.value.tensors.keys()])]
  names.sort(comparePaths)
  const tensors: TensorExplanation[] = []
  let moreTensors = 0
  for (const name of names) {
    const pair = tensorPair(expected.value, actual.value, name)
    if (tensors.length < maxTensors) {
      const explanation = await explainTensor(c, name, pair)
      if (explanation !== null) tensors.push(explanation)
    } else if (await tensorDiffers(c, pair)) {
      moreTensors++
    }
  }
  const nothingFound = tensors.length === 0 && metadataChanges.length === 0 && !c.truncated
  return {
    kind: 'safetensors',
    ...filePair(c),
    metadataChanges,
    tensors,
    moreTensors,
    ...(nothingFound
      ? { note: 'every tensor and the metadata are equal: the header layout or padding differs' }
      : {})
  }
}

interface TensorPair {
  expected?: SafetensorsTensor
  actual?: SafetensorsTensor
}

function tensorPair(
  expected: SafetensorsHeader,
  actual: SafetensorsHeader,
  name: string
): TensorPair {
  return { expected: expected.tensors.get(name), actual: actual.tensors.get(name) }
}

function tensorHeaderChanges(e: SafetensorsTensor, a: SafetensorsTensor): string[] {
  return [
    change('dtype', e.dtype, a.dtype),
    change('shape', `[${e.shape.join(', ')}]`, `[${a.shape.join(', ')}]`)
  ].filter(line => line !== null)
}

function summary(tensor: SafetensorsTensor): TensorSummary {
  return { dtype: tensor.dtype, shape: tensor.shape }
}

/** Null when the tensor is the same on both sides (as far as the budget allowed to look). */
async function explainTensor(
  c: Comparison,
  name: string,
  { expected, actual }: TensorPair
): Promise<TensorExplanation | null> {
  const base = { name, headerChanges: [], elements: null }
  if (expected === undefined) return { ...base, change: 'added', actual: summary(actual!) }
  if (actual === undefined) return { ...base, change: 'removed', expected: summary(expected) }
  const sides = { expected: summary(expected), actual: summary(actual) }
  const headerChanges = tensorHeaderChanges(expected, actual)
  if (headerChanges.length > 0) return { ...base, change: 'changed', ...sides, headerChanges }
  if (expected.type === null) {
    const offset = await firstDifferentTensorByte(c, expected, actual)
    if (offset === null) return null
    return { ...base, change: 'changed', ...sides, firstDifferentByte: offset }
  }
  const elements = await compareElements(
    { handle: c.expected.handle, offset: expected.begin },
    { handle: c.actual.handle, offset: actual.begin },
    { type: expected.type, shape: expected.shape, fortranOrder: false },
    (expected.end - expected.begin) / expected.type.size,
    c.budget
  )
  c.truncated ||= elements.compared < elements.elements
  return elements.differing === 0 ? null : { ...base, change: 'changed', ...sides, elements }
}

/** The cheap check for tensors beyond the report cap: no element statistics. */
async function tensorDiffers(c: Comparison, { expected, actual }: TensorPair): Promise<boolean> {
  if (expected === undefined || actual === undefined) return true
  if (tensorHeaderChanges(expected, actual).length > 0) return true
  return (await firstDifferentTensorByte(c, expected, actual)) !== null
}

async function firstDifferentTensorByte(
  c: Comparison,
  expected: SafetensorsTensor,
  actual: SafetensorsTensor
): Promise<number | null> {
  const [lengthE, lengthA] = [expected.end - expected.begin, actual.end - actual.begin]
  const length = Math.min(lengthE, lengthA)
  const found = await firstDifferentByte(
    { handle: c.expected.handle, offset: expected.begin },
    { handle: c.actual.handle, offset: actual.begin },
    length,
    c.budget
  )
  if (found.offset !== null) return found.offset
  if (found.compared < length) c.truncated = true
  return found.compared === length && lengthE !== lengthA ? length : null
}

function diffMetadata(
  expected: Map<string, string>,
  actual: Map<string, string>,
  maxLines: number
): string[] {
  const keys = [...new Set([...expected.keys(), ...actual.keys()])].sort(comparePaths)
  const lines: string[] = []
  for (const key of keys) {
    const [e, a] = [expected.get(key), actual.get(key)]
    if (e === a) continue
    if (e === undefined) lines.push(`${key}: added ${shortQuote(a!)}`)
    else if (a === undefined) lines.push(`${key}: removed (was ${shortQuote(e)})`)
    else lines.push(`${key}: ${shortQuote(e)} → ${shortQuote(a)}`)
  }
  if (lines.length <= maxLines) return lines
  return [...lines.slice(0, maxLines), `… ${lines.length - maxLines} more metadata changes`]
}

function change(field: string, expected: string, actual: string): string | null {
  return expected === actual ? null : `${field} ${expected} → ${actual}`
}

function pythonBool(value: boolean): string {
  return value ? 'True' : 'False'
}

function shortQuote(value: string): string {
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)
}

/** Lines for the CLI and the job summary; names from the files are made printable. */
export function formatExplanation(e: FileExplanation): string[] {
  const name = printable(e.name)
  switch (e.kind) {
    case 'unreadable':
      return [`${name}: ${e.note}`]
    case 'bytes':
      return withNote([`${name}: ${describeBytes(e)}`], e.note)
    case 'npy': {
      const detail =
        e.headerChanges.length > 0
          ? `header changed: ${e.headerChanges.join(', ')}`
          : describeElements(e.elements!)
      return withNote([`${name}: ${detail}`], e.note)
    }
    case 'safetensors':
      return withNote(formatSafetensors(name, e), e.note)
    case 'json':
      return withNote(formatJson(name, e), e.note)
  }
}

function formatJson(name: string, e: JsonExplanation): string[] {
  const differing = e.keys.length + e.moreKeys
  const count =
    differing === 0
      ? 'no key differs'
      : differing === 1
        ? '1 key differs'
        : `${differing} keys differ`
  const lines = [`${name}: ${count}`]
  for (const key of e.keys) {
    const path = key.path === '' ? '(the whole document)' : key.path
    const what =
      key.change === 'added'
        ? `added ${key.actual}`
        : key.change === 'removed'
          ? `removed (was ${key.expected})`
          : `${key.expected} → ${key.actual}`
    lines.push(`  ${printable(`${path}: ${what}`)}`)
  }
  if (e.moreKeys > 0) lines.push(`  … ${e.moreKeys} more keys differ`)
  return lines
}

function withNote(lines: string[], note: string | undefined): string[] {
  return note === undefined ? lines : [...lines, `  note: ${printable(note)}`]
}

function describeBytes(e: BytesExplanation): string {
  const sizes =
    e.expectedSize === e.actualSize
      ? `${e.expectedSize} bytes`
      : `size ${e.expectedSize} → ${e.actualSize} bytes`
  if (e.firstDifferentOffset !== null) {
    return `${sizes}, first difference at byte ${e.firstDifferentOffset}`
  }
  if (e.truncated) return `${sizes}, no difference before the byte budget ran out`
  return `${sizes}, no difference`
}

function describeElements(stats: ElementStats): string {
  const partial =
    stats.compared < stats.elements
      ? ` (compared ${stats.compared} of ${stats.elements} before the byte budget ran out)`
      : ''
  if (stats.differing === 0) return `${stats.elements} elements, none differ${partial}`
  const details = [
    ...(stats.maxAbsDiff === null ? [] : [`max |Δ| ${formatNumber(stats.maxAbsDiff)}`]),
    ...(stats.nanDiffering > 0 ? [`${stats.nanDiffering} involving NaN`] : []),
    `first at [${stats.firstDifferent!.index.join(', ')}]`
  ]
  const verb = stats.differing === 1 ? 'differs' : 'differ'
  return `${stats.differing} of ${stats.elements} elements ${verb} (${details.join(', ')})${partial}`
}

function formatSafetensors(name: string, e: SafetensorsExplanation): string[] {
  const differing = e.tensors.length + e.moreTensors
  const parts = [
    ...(differing > 0
      ? [differing === 1 ? '1 tensor differs' : `${differing} tensors differ`]
      : []),
    ...(e.metadataChanges.length > 0 ? ['metadata changed'] : []),
    ...(differing === 0 && e.metadataChanges.length === 0 ? ['no tensor differs'] : [])
  ]
  const lines = [`${name}: ${parts.join(', ')}`]
  for (const tensor of e.tensors)
    lines.push(`  ${printable(tensor.name)}: ${describeTensor(tensor)}`)
  if (e.moreTensors > 0) lines.push(`  … ${e.moreTensors} more tensors differ`)
  for (const line of e.metadataChanges) lines.push(`  __metadata__ ${printable(line)}`)
  if (e.truncated) lines.push('  (the byte budget ran out: later data was not compared)')
  return lines
}

function describeTensor(t: TensorExplanation): string {
  const describe = (s: TensorSummary): string => `${printable(s.dtype)} [${s.shape.join(', ')}]`
  if (t.change === 'added') return `added (${describe(t.actual!)})`
  if (t.change === 'removed') return `removed (was ${describe(t.expected!)})`
  if (t.headerChanges.length > 0) return `header changed: ${printable(t.headerChanges.join(', '))}`
  if (t.elements !== null) return describeElements(t.elements)
  return `${printable(t.expected!.dtype)} is not decoded: bytes differ from byte ${t.firstDifferentByte} of the tensor`
}

function formatNumber(value: number): string {
  return Number.isInteger(value) || !Number.isFinite(value)
    ? String(value)
    : String(Number(value.toPrecision(6)))
}

/** A name from a file, on one line: unsafe characters escaped, cut at 200 characters. */
export function printable(text: string): string {
  return clip(text, 200)
}
