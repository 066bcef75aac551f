import path from 'node:path'
import { VerifyError } from '../errors.js'
import {
  parsePrivateKey,
  parsePublicKeys,
  type PrivateKey,
  type PublicKey
} from '../protocol/keys.js'
import type { Mode } from '../verify/pipeline.js'
import { parseSegmentSelection, type SegmentSelection } from '../segments/selection.js'
import { resolveVerifierId } from '../attest/verifier-id.js'
import { parseLogPolicy, type LogPolicy } from '../tlog/verify.js'

/** Every input of action.yml, parsed and checked in one place. */
export interface ActionInputs {
  attestation: Source
  publicKeys: PublicKey[]
  threshold: number
  mode: ActionMode
  model?: string
  modelUrls: NamedUrl[]
  dataset?: string
  expectedCapability?: string
  allowNetwork: boolean
  timeoutCapSeconds?: number
  cache: boolean
  showSummary: boolean
  workingDirectory: string
  /** A segmented build's signed transcript (PROTOCOL.md section 9). */
  transcript?: Source
  /** Which segments to re-run (verify) or draw (plan). */
  segments?: SegmentSelection
  /** Sign a rebuild attestation after a passing rebuild. */
  attest?: AttestInputs
  /** Mode attested: the rebuild attestations to accept. */
  rebuilds?: RebuildInputs
  /** With `log-key`: the proof to fetch and the policy it must meet. */
  log?: { proof: Source; policy: LogPolicy }
}

/** `plan` verifies nothing: it draws the segments a matrix of verify jobs re-runs. */
export type ActionMode = Mode | 'plan'

export type Source = { kind: 'path'; path: string } | { kind: 'url'; url: string }

export interface NamedUrl {
  name: string
  url: string
}

/** A mistake in the workflow's `with:` block: names the input and the fix. */
export class InputError extends Error {
  override readonly name = 'InputError'
}

export type GetInput = (name: string) => string

const MODES: readonly ActionMode[] = ['verify', 'reproduce', 'check', 'attested', 'plan']
const CAPABILITY = /^ocap1:[0-9a-f]{64}$/
const FILE_NAME = /^[A-Za-z0-9._-]+$/

export function parseInputs(getInput: GetInput, env: NodeJS.ProcessEnv): ActionInputs {
  const text = (name: string) => getInput(name).trim()
  const required = (name: string, why = '') => {
    const value = text(name)
    if (!value) throw new InputError(`Input required and not supplied: ${name}${why}`)
    return value
  }

  const attestation = parseSource(required('attestation', ' (path or https:// URL of the SBA)'))
  const publicKeys = parseKeys(required('public-key', " (the publisher's Ed25519 public key)"))
  const threshold = positiveInteger('threshold', text('threshold') || '1')
  if (threshold > publicKeys.length) {
    throw new InputError(
      `threshold ${threshold} is more than the ${publicKeys.length} public key(s) given`
    )
  }
  const mode = (text('mode') || 'verify') as ActionMode
  if (!MODES.includes(mode))
    throw new InputError(`mode must be one of ${MODES.join(', ')}; got '${mode}'`)

  const model = text('model') || undefined
  const modelUrls = parseModelUrls(getInput('model-url'))
  if (model && modelUrls.length > 0)
    throw new InputError('give either model or model-url, not both')
  if (
    (mode === 'verify' || mode === 'check' || mode === 'attested') &&
    !model &&
    modelUrls.length === 0
  ) {
    throw new InputError(`mode ${mode} needs the downloaded model: set model (a path) or model-url`)
  }
  if ((mode === 'reproduce' || mode === 'plan') && (model || modelUrls.length > 0)) {
    throw new InputError(
      `mode ${mode} compares nothing: remove model / model-url, or use mode verify`
    )
  }
  const { transcript, segments } = parseSegmentInputs(text('transcript'), text('segments'), mode)

  const expectedCapability = text('expected-capability') || undefined
  if (expectedCapability !== undefined && !CAPABILITY.test(expectedCapability)) {
    throw new InputError(
      `expected-capability must be ocap1: followed by 64 lowercase hex; got '${expectedCapability}'`
    )
  }
  if (mode === 'check' && !expectedCapability) {
    throw new InputError(
      'mode check needs expected-capability (the ocap1:… value issued by an earlier verification)'
    )
  }

  const timeoutMinutes = text('timeout-minutes')
  const workingDirectory = text('working-directory') || env.RUNNER_TEMP
  if (!workingDirectory)
    throw new InputError('working-directory is not set and RUNNER_TEMP is empty')

  return {
    attestation,
    publicKeys,
    threshold,
    mode,
    model: model && path.resolve(model),
    modelUrls,
    dataset: text('dataset') ? path.resolve(text('dataset')) : undefined,
    expectedCapability,
    allowNetwork: boolean('allow-network', text('allow-network') || 'false'),
    timeoutCapSeconds: timeoutMinutes
      ? positiveInteger('timeout-minutes', timeoutMinutes) * 60
      : undefined,
    cache: boolean('cache', text('cache') || 'true'),
    showSummary: boolean('show-summary', text('show-summary') || 'true'),
    workingDirectory: path.resolve(workingDirectory),
    ...(transcript === undefined ? {} : { transcript }),
    ...(segments === undefined ? {} : { segments }),
    log: parseLogInputs(getInput),
    ...parseAttestInputs(text, mode, env)
  }
}

/** transcript and segments (PROTOCOL.md section 9): spot checks in verify mode, a draw in plan mode. */
function parseSegmentInputs(
  transcriptText: string,
  segmentsText: string,
  mode: ActionMode
): { transcript?: Source; segments?: SegmentSelection } {
  const transcript = transcriptText ? parseSource(transcriptText, 'transcript') : undefined
  let segments: SegmentSelection | undefined
  try {
    segments = segmentsText ? parseSegmentSelection(segmentsText) : undefined
  } catch (error) {
    throw new InputError(`segments: ${(error as Error).message}`)
  }
  if (mode === 'plan') {
    if (segments === undefined || segments.kind === 'indices')
      throw new InputError(
        'mode plan needs segments: the number k of segments to draw for the matrix (or all)'
      )
    return { transcript, segments }
  }
  if (transcript !== undefined && mode !== 'verify')
    throw new InputError(
      `transcript: a segmented build is spot-checked in mode verify (with the model), not mode ${mode}`
    )
  if (transcript !== undefined && segments === undefined)
    throw new InputError(
      'transcript needs segments: a number k of random segments to re-run, all, or a comma list of indices (7, for one)'
    )
  if (segments !== undefined && transcript === undefined)
    throw new InputError(
      'segments needs transcript (the signed state roots of the segmented build)'
    )
  return { transcript, segments }
}

/** `log-proof`, `log-key`, `witness-keys`, `witness-threshold` (PROTOCOL.md section 7). */
function parseLogInputs(getInput: GetInput): ActionInputs['log'] {
  const logKey = getInput('log-key').trim()
  const proof = getInput('log-proof').trim()
  const witnessKeys = getInput('witness-keys')
    .split('\n')
    .map(line => line.trim())
    .filter(line => line !== '' && !line.startsWith('#'))
  const threshold = getInput('witness-threshold').trim() || '0'
  if (!/^\d+$/.test(threshold) || !Number.isSafeInteger(Number(threshold))) {
    throw new InputError(`witness-threshold must be a whole number ≥ 0; got '${threshold}'`)
  }
  if (!logKey) {
    if (proof || witnessKeys.length > 0 || Number(threshold) > 0) {
      throw new InputError(
        "log-proof, witness-keys and witness-threshold need log-key (the log's C2SP verifier key)"
      )
    }
    return undefined
  }
  if (!proof) {
    throw new InputError(
      'log-key is set, so a log proof is required: set log-proof (path or https:// URL of the .tlog-proof)'
    )
  }
  const policy = { logKey, witnessKeys, witnessThreshold: Number(threshold) }
  try {
    parseLogPolicy(policy)
  } catch (error) {
    if (error instanceof VerifyError) throw new InputError(error.message)
    throw error
  }
  return { proof: parseSource(proof, 'log-proof'), policy }
}

function parseSource(value: string, input = 'attestation'): Source {
  if (/^https?:\/\//i.test(value)) return { kind: 'url', url: value }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new InputError(
      `${input} must be a path or an https:// URL (http:// only to 127.0.0.1 or localhost); got '${value}'`
    )
  }
  return { kind: 'path', path: path.resolve(value) }
}

function parseKeys(value: string, name = 'public-key'): PublicKey[] {
  try {
    return parsePublicKeys(value)
  } catch (error) {
    if (error instanceof VerifyError) throw new InputError(`${name}: ${error.message}`)
    throw error
  }
}

export function parseModelUrls(value: string): NamedUrl[] {
  const urls = value
    .split('\n')
    .map(line => line.trim())
    .filter(line => line !== '' && !line.startsWith('#'))
    .map(line => {
      const named = /^([^=\s]+)=(https?:\/\/\S+)$/.exec(line)
      const url = named ? named[2] : line
      if (!/^https?:\/\/\S+$/.test(url))
        throw new InputError(`model-url: '${line}' is not a URL or name=URL`)
      const name = named ? named[1] : fileNameOf(url)
      if (!FILE_NAME.test(name) || name === '.' || name === '..') {
        throw new InputError(
          `model-url: file name '${name}' must be letters, digits, '.', '_' or '-': write name=URL`
        )
      }
      return { name, url }
    })
  const names = new Set<string>()
  for (const { name } of urls) {
    if (names.has(name)) throw new InputError(`model-url: the file name '${name}' appears twice`)
    names.add(name)
  }
  return urls
}

function fileNameOf(url: string): string {
  const last = new URL(url).pathname.split('/').pop() ?? ''
  try {
    return decodeURIComponent(last)
  } catch {
    throw new InputError(`model-url: cannot read a file name from '${url}': write name=URL`)
  }
}

function positiveInteger(name: string, value: string): number {
  const number = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number < 1) {
    throw new InputError(`${name} must be a whole number ≥ 1; got '${value}'`)
  }
  return number
}

function boolean(name: string, value: string): boolean {
  if (/^(true|True|TRUE)$/.test(value)) return true
  if (/^(false|False|FALSE)$/.test(value)) return false
  throw new InputError(`${name} must be true or false; got '${value}'`)
}

// Rebuild attestations (PROTOCOL.md section 8): signing one (attest-key, verifier-id) and
// accepting them (mode attested).

export interface AttestInputs {
  key: PrivateKey
  verifierId: string
}

export interface RebuildInputs {
  attestations: Source[]
  keys: PublicKey[]
  threshold: number
  /** Same order as `attestations`; empty unless given. */
  logProofs: Source[]
}

const ARMOR = /^-----(BEGIN|END) [A-Z0-9 ]+-----$/

/**
 * The lines of a private key input to mask in the log: the runner masks line by line, so a
 * multi-line secret registered whole would never match. The PEM armor lines are no secret.
 */
export function secretLines(value: string): string[] {
  const lines = value
    .split(/\r?\n/)
    .map(line => line.trim())
    .filter(line => line !== '' && !ARMOR.test(line))
  return value.trim() === '' ? [] : [value, ...lines]
}

export function parseAttestInputs(
  text: (name: string) => string,
  mode: ActionMode,
  env: NodeJS.ProcessEnv
): { attest?: AttestInputs; rebuilds?: RebuildInputs } {
  return { attest: parseAttest(text, mode, env), rebuilds: parseRebuilds(text, mode) }
}

function parseAttest(
  text: (name: string) => string,
  mode: ActionMode,
  env: NodeJS.ProcessEnv
): AttestInputs | undefined {
  const pem = text('attest-key')
  if (!pem) {
    if (text('verifier-id')) throw new InputError('verifier-id is only used with attest-key')
    return undefined
  }
  if (mode !== 'verify' && mode !== 'reproduce') {
    throw new InputError(
      `attest-key: mode ${mode} rebuilds nothing, so there is nothing to attest; sign rebuild attestations in mode verify or reproduce`
    )
  }
  let key: PrivateKey
  try {
    key = parsePrivateKey(pem, 'attest-key')
  } catch (error) {
    if (error instanceof VerifyError) throw new InputError(error.message)
    throw error
  }
  const resolved = resolveVerifierId(text('verifier-id') || undefined, env, 'verifier-id')
  if ('error' in resolved) throw new InputError(resolved.error)
  return { key, verifierId: resolved.verifierId }
}

function parseRebuilds(
  text: (name: string) => string,
  mode: ActionMode
): RebuildInputs | undefined {
  const names = ['rebuild-attestations', 'rebuilder-keys', 'rebuild-log-proofs']
  if (mode !== 'attested') {
    const given = names.find(name => text(name))
    if (given) throw new InputError(`${given} is only used in mode attested`)
    if ((text('rebuilder-threshold') || '1') !== '1') {
      throw new InputError('rebuilder-threshold is only used in mode attested')
    }
    return undefined
  }
  const attestations = lines(text('rebuild-attestations')).map(line =>
    parseSource(line, 'rebuild-attestations')
  )
  if (attestations.length === 0) {
    throw new InputError(
      'Input required and not supplied: rebuild-attestations (mode attested: paths or URLs of rebuild attestations, one per line)'
    )
  }
  if (!text('rebuilder-keys')) {
    throw new InputError(
      "Input required and not supplied: rebuilder-keys (mode attested: the trusted rebuilders' Ed25519 public keys)"
    )
  }
  const keys = parseKeys(text('rebuilder-keys'), 'rebuilder-keys')
  const distinct = new Set(keys.map(k => k.keyId)).size
  const threshold = positiveInteger('rebuilder-threshold', text('rebuilder-threshold') || '1')
  if (threshold > distinct) {
    throw new InputError(
      `rebuilder-threshold ${threshold} is more than the ${distinct} distinct rebuilder key(s) given`
    )
  }
  const logProofs = lines(text('rebuild-log-proofs')).map(line =>
    parseSource(line, 'rebuild-log-proofs')
  )
  if (!text('log-key') && logProofs.length > 0) {
    throw new InputError("rebuild-log-proofs need log-key (the log's C2SP verifier key)")
  }
  if (text('log-key') && logProofs.length !== attestations.length) {
    throw new InputError(
      `rebuild-log-proofs: log-key is set, so each rebuild attestation needs its log proof: ${logProofs.length} proof(s) for ${attestations.length} attestation(s); give one per attestation, in the same order`
    )
  }
  return { attestations, keys, threshold, logProofs }
}

function lines(value: string): string[] {
  return value
    .split('\n')
    .map(line => line.trim())
    .filter(line => line !== '' && !line.startsWith('#'))
}
