import { existsSync, readFileSync } from 'node:fs'
import { VerifyError } from '../errors.js'
import { parsePublicKey, parsePublicKeys, type PublicKey } from '../protocol/keys.js'

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
    throw new UsageError(
      `cannot read ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`
    )
  }
}

/** A --public-key value is a file holding the key, or the key itself (hex or base64). */
export function readPublicKeys(values: readonly string[]): PublicKey[] {
  if (values.length === 0) throw new UsageError('at least one --public-key is required')
  return values.flatMap(value => {
    try {
      return existsSync(value)
        ? parsePublicKeys(readInputFile(value, 'public key').toString('utf8'))
        : [parsePublicKey(value, `--public-key ${value}`)]
    } catch (error) {
      throw asUsageError(error)
    }
  })
}

/** Input that fails the protocol's rules, in a command that verifies nothing, is a usage error. */
export function asUsageError(error: unknown): unknown {
  return error instanceof VerifyError ? new UsageError(error.message) : error
}

export function parseThreshold(value: string): number {
  const threshold = Number(value)
  if (!Number.isSafeInteger(threshold) || threshold < 1) {
    throw new UsageError(`--threshold must be a whole number ≥ 1, got '${value}'`)
  }
  return threshold
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

export function printJson(io: CliIo, value: unknown): void {
  io.stdout(JSON.stringify(value, null, 2) + '\n')
}
