import { existsSync, readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { messageOf, VerifyError } from '../errors.js'
import { verifyAttestation, type VerifiedAttestation } from '../protocol/attestation.js'
import {
  parsePrivateKey,
  parsePublicKey,
  parsePublicKeys,
  type PrivateKey,
  type PublicKey
} from '../protocol/keys.js'

/** A mistake in how the CLI was called or in a file it was given: exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

export interface CliIo {
  stdout(text: string): void
  stderr(text: string): void
}

export const processIo: CliIo = {
  stdout: text => process.stdout.write(text),
  stderr: text => process.stderr.write(text)
}

export function readInputFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new UsageError(
      `cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? messageOf(error))}`
    )
  }
}

/** A private key file given with `flag` (a key file of `keygen`, in any accepted form). */
export function readPrivateKeyFile(file: string, flag = '--key'): PrivateKey {
  try {
    return parsePrivateKey(readInputFile(file, 'private key').toString('utf8'), `${flag} ${file}`)
  } catch (error) {
    throw asUsageError(error)
  }
}

/** A --public-key value is a file holding the key, or the key itself (hex or base64). */
export function readPublicKeys(values: readonly string[], flag = '--public-key'): PublicKey[] {
  if (values.length === 0) throw new UsageError(`at least one ${flag} is required`)
  return values.flatMap(value => {
    try {
      if (existsSync(value))
        return parsePublicKeys(readInputFile(value, 'public key').toString('utf8'))
      if (looksLikePath(value))
        throw new UsageError(`${flag} ${value}: no such file (a key given inline is hex or base64)`)
      return [parsePublicKey(value, `${flag} ${value}`)]
    } catch (error) {
      throw asUsageError(error)
    }
  })
}

/** Hex and base64 keys never contain '.' or start with '~': such a value was meant as a file. */
function looksLikePath(value: string): boolean {
  return value.includes('.') || value.startsWith('~')
}

/** Input that fails the protocol's rules, in a command that verifies nothing, is a usage error. */
export function asUsageError(error: unknown): unknown {
  return error instanceof VerifyError ? new UsageError(error.message) : error
}

export function parseThreshold(value: string, flag = '--threshold'): number {
  const threshold = Number(value)
  if (!Number.isSafeInteger(threshold) || threshold < 1) {
    throw new UsageError(`${flag} must be a whole number ≥ 1, got '${value}'`)
  }
  return threshold
}

/** `--public-key` (repeatable) and `--threshold`: who must have signed. */
export interface TrustOptions {
  publicKey: string[]
  threshold: string
}

export function withTrustOptions(command: Command): Command {
  return command
    .option('--public-key <key>', 'trusted key: a file, or hex / base64; repeatable', collect, [])
    .option('--threshold <n>', 'distinct trusted keys that must have signed', '1')
}

export function readTrust(options: TrustOptions): { keys: PublicKey[]; threshold: number } {
  return { keys: readPublicKeys(options.publicKey), threshold: parseThreshold(options.threshold) }
}

/** Reads an SBA file and verifies it against the trusted keys of the command's options. */
export function verifySbaFile(file: string, options: TrustOptions): VerifiedAttestation {
  const { keys, threshold } = readTrust(options)
  return verifyAttestation(readInputFile(file, 'SBA'), keys, threshold)
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

export function printJson(io: CliIo, value: unknown): void {
  io.stdout(JSON.stringify(value, null, 2) + '\n')
}
