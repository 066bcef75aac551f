import path from 'node:path'
import { VerifyError } from '../errors.js'
import { parsePublicKeys, type PublicKey } from '../protocol/keys.js'
import type { Mode } from '../verify/pipeline.js'
import { parseLogPolicy, type LogPolicy } from '../tlog/verify.js'

/** Every input of action.yml, parsed and checked in one place. */
export interface ActionInputs {
  attestation: Source
  publicKeys: PublicKey[]
  threshold: number
  mode: Mode
  model?: string
  modelUrls: NamedUrl[]
  dataset?: string
  expectedCapability?: string
  allowNetwork: boolean
  timeoutCapSeconds?: number
  cache: boolean
  showSummary: boolean
  workingDirectory: string
  /** With `log-key`: the proof to fetch and the policy it must meet. */
  log?: { proof: Source; policy: LogPolicy }
}

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

const MODES: readonly Mode[] = ['verify', 'reproduce', 'check']
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
  const mode = (text('mode') || 'verify') as Mode
  if (!MODES.includes(mode))
    throw new InputError(`mode must be one of ${MODES.join(', ')}; got '${mode}'`)

  const model = text('model') || undefined
  const modelUrls = parseModelUrls(getInput('model-url'))
  if (model && modelUrls.length > 0)
    throw new InputError('give either model or model-url, not both')
  if (mode !== 'reproduce' && !model && modelUrls.length === 0) {
    throw new InputError(`mode ${mode} needs the downloaded model: set model (a path) or model-url`)
  }
  if (mode === 'reproduce' && (model || modelUrls.length > 0)) {
    throw new InputError(
      'mode reproduce compares nothing: remove model / model-url, or use mode verify'
    )
  }

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
    log: parseLogInputs(getInput)
  }
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

function parseKeys(value: string): PublicKey[] {
  try {
    return parsePublicKeys(value)
  } catch (error) {
    if (error instanceof VerifyError) throw new InputError(`public-key: ${error.message}`)
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
