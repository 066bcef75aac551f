// What the log commands and the verifying commands share: keys, the log to read, the proof policy.
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Command } from 'commander'
import { download } from '../download.js'
import { attestationDigest } from '../protocol/capability.js'
import { parseEnvelope, verifyEnvelope } from '../protocol/envelope.js'
import { formatEntry } from '../tlog/entry.js'
import { openSource, type LogSource } from '../tlog/source.js'
import { verifyLogProof, type LogPolicy, type LogProofResult } from '../tlog/verify.js'
import { logLine } from '../text/sanitize.js'
import {
  collect,
  readInputFile,
  readTrust,
  UsageError,
  type CliIo,
  type TrustOptions
} from './io.js'

/** A C2SP verifier key given as the string itself or as a file holding it. */
export function readVerifierKeyArg(value: string): string {
  return existsSync(value) ? readFileSync(value, 'utf8').trim() : value.trim()
}

/** A DSSE envelope whose signatures verified: what a log entry names (docs/protocol.md section 7). */
export interface VerifiedEnvelope {
  attestationDigest: string
  verifiedKeys: { raw: Uint8Array; keyId: string }[]
  keyIds: string[]
}

/**
 * Any DSSE envelope of ours (an SBA, a rebuild attestation, a transcript) verified under the
 * given keys. A log entry vouches for the signatures only (section 7), so the statement inside
 * is not parsed: a rebuilder logs its rebuild attestation with the same command.
 */
export function verifyEnvelopeFile(file: string, options: TrustOptions): VerifiedEnvelope {
  const { keys, threshold } = readTrust(options)
  const envelope = parseEnvelope(readInputFile(file, 'envelope'), 'envelope')
  const verifiedKeys = verifyEnvelope(envelope, keys, threshold)
  return {
    attestationDigest: attestationDigest(envelope),
    verifiedKeys,
    keyIds: verifiedKeys.map(key => key.keyId)
  }
}

/** The log entry of a verified envelope: its digest and every key that verified it. */
export function entryOf(verified: VerifiedEnvelope): Uint8Array {
  return formatEntry(
    verified.attestationDigest,
    verified.verifiedKeys.map(key => key.raw)
  )
}

export interface LogLocationOptions {
  dir?: string
  url?: string
}

export function withLogLocation(command: Command): Command {
  return command
    .option('--dir <dir>', 'the log as a local directory')
    .option('--url <url>', 'the log served over https (its prefix: <url>/checkpoint)')
}

export function openLog(options: LogLocationOptions): LogSource {
  try {
    return openSource(options)
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}

/** Text a server controls, printed whole (a proof, a checkpoint) only when no line is a command. */
export function printInert(io: CliIo, text: string, what: string): void {
  if (text.split('\n').some(line => logLine(line) !== line)) {
    throw new UsageError(
      `the ${what} holds a line a workflow runner would read as a command: write it with -o FILE`
    )
  }
  io.stdout(text)
}

/** `--log-proof`, `--log-key`, `--witness-key` (repeatable), `--witness-threshold`. */
export interface LogProofOptions {
  logProof?: string
  logKey?: string
  witnessKey: string[]
  witnessThreshold: string
}

export function withLogProofOptions(command: Command): Command {
  return command
    .option('--log-proof <file|url>', 'the .tlog-proof of the SBA (required with --log-key)')
    .option(
      '--log-key <vkey>',
      "the log's C2SP verifier key (or a file holding it): a proof is required"
    )
    .option('--witness-key <vkey>', 'a witness verifier key (or file); repeatable', collect, [])
    .option('--witness-threshold <k>', 'distinct witnesses that must have cosigned', '0')
}

export interface LogRequirement {
  proof: Uint8Array
  policy: LogPolicy
}

/** The proof and policy when `--log-key` asks for one; a proof without a key is a usage error. */
export async function readLogRequirement(
  options: LogProofOptions
): Promise<LogRequirement | undefined> {
  const threshold = Number(options.witnessThreshold)
  if (!/^\d+$/.test(options.witnessThreshold) || !Number.isSafeInteger(threshold)) {
    throw new UsageError(
      `--witness-threshold must be a whole number ≥ 0, got '${options.witnessThreshold}'`
    )
  }
  if (options.logKey === undefined) {
    if (options.logProof !== undefined || options.witnessKey.length > 0 || threshold > 0) {
      throw new UsageError('--log-proof, --witness-key and --witness-threshold need --log-key')
    }
    return undefined
  }
  if (options.logProof === undefined) {
    throw new UsageError('--log-key requires a log proof: give --log-proof FILE or URL')
  }
  return {
    proof: await readProof(options.logProof),
    policy: {
      logKey: readVerifierKeyArg(options.logKey),
      witnessKeys: options.witnessKey.map(readVerifierKeyArg),
      witnessThreshold: threshold
    }
  }
}

/** A proof file, or a URL fetched with src/download.ts (failing to fetch it: unverifiable). */
export async function readProof(location: string): Promise<Uint8Array> {
  if (!/^https?:\/\//i.test(location)) return readInputFile(location, 'log proof')
  const dir = await mkdtemp(path.join(os.tmpdir(), 'verify-model-proof-'))
  try {
    const file = path.join(dir, 'proof.tlog-proof')
    await download(location, file, { maxBytes: 2 * 1024 * 1024 })
    return await readFile(file)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

export function checkLogProof(
  requirement: LogRequirement,
  verified: VerifiedEnvelope
): LogProofResult {
  return verifyLogProof(requirement.proof, requirement.policy, {
    attestationDigest: verified.attestationDigest,
    verifiedKeys: verified.verifiedKeys.map(key => key.raw)
  })
}
