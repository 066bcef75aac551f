/** Every outcome of a verification, as docs/protocol.md section 6 names them. */
export type Verdict = 'verified' | 'reproduced' | 'mismatch' | 'unverifiable' | 'invalid'

export type FailingVerdict = Exclude<Verdict, 'verified' | 'reproduced'>

const PASSING_VERDICTS: readonly Verdict[] = ['verified', 'reproduced']

export function isPassing(verdict: Verdict): boolean {
  return PASSING_VERDICTS.includes(verdict)
}

/**
 * Stable names of what went wrong, for scripts and tests (messages may be reworded; codes
 * are not). The verdict's own name, upper-cased, is the code of a failure with no finer one.
 */
export type ErrorCode =
  | 'INVALID'
  | 'UNVERIFIABLE'
  | 'MISMATCH'
  /** Anything thrown that was not a VerifyError: the verifier could not finish. */
  | 'INTERNAL'
  /** JSON that is not valid UTF-8, has duplicate keys or is not JSON. */
  | 'JSON_SYNTAX'
  /** A ledger field breaks docs/protocol.md section 2. */
  | 'LEDGER_FIELD'
  /** The DSSE envelope is malformed (docs/protocol.md section 3). */
  | 'ENVELOPE_FORMAT'
  /** Fewer distinct trusted keys signed than the threshold asks. */
  | 'SIGNATURE_THRESHOLD'
  | 'KEY_FORMAT'
  /** A tree that has no digest: a symlink, a special file, a non-UTF-8 name, no files. */
  | 'TREE_INVALID'
  | 'SOURCE_FETCH'
  | 'SOURCE_COMMIT'
  | 'DEPENDENCY_DIGEST'
  | 'DATASET_MISSING'
  | 'DATASET_DIGEST'
  | 'DOWNLOAD_URL'
  | 'DOWNLOAD_FAILED'
  | 'DOCKER_UNAVAILABLE'
  | 'IMAGE_PULL'
  | 'IMAGE_DIGEST'
  /** The ledger asks for network access the caller did not allow. */
  | 'NETWORK_POLICY'
  /** The runner lacks what the build needs (CPUs, GPUs, CPU features, platform). */
  | 'RUNNER_LACKS'
  | 'BUILD_START'
  | 'BUILD_FAILED'
  | 'BUILD_TIMEOUT'
  | 'BUILD_OOM'
  | 'DAEMON_LOST'
  | 'OUTPUT_MISSING'
  | 'OUTPUT_TOO_LARGE'
  | 'OUTPUT_EXISTS'
  | 'MODEL_MISSING'
  /** The downloaded model's files cannot be the declared outputs (found before any build). */
  | 'FILE_SET_MISMATCH'
  | 'ROOT_MISMATCH'
  | 'CAPABILITY_MISMATCH'

export interface VerifyErrorOptions {
  code?: ErrorCode
  /** What was caught, kept for debugging (`error.cause`); never shown in place of the message. */
  cause?: unknown
}

/**
 * The one error type of the project: a failing verdict, a stable code and one line for humans
 * that names what was wrong (the field, the file, both digests) and, where there is one, the fix.
 * `detail` carries longer material (a build log tail) that reports show apart from the message.
 */
export class VerifyError extends Error {
  override readonly name = 'VerifyError'
  readonly code: ErrorCode

  constructor(
    readonly verdict: FailingVerdict,
    message: string,
    readonly detail?: string,
    options: VerifyErrorOptions = {}
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = options.code ?? (verdict.toUpperCase() as ErrorCode)
  }
}

export const invalid = (
  message: string,
  detail?: string,
  options?: VerifyErrorOptions
): VerifyError => new VerifyError('invalid', message, detail, options)
export const unverifiable = (
  message: string,
  detail?: string,
  options?: VerifyErrorOptions
): VerifyError => new VerifyError('unverifiable', message, detail, options)
export const mismatch = (
  message: string,
  detail?: string,
  options?: VerifyErrorOptions
): VerifyError => new VerifyError('mismatch', message, detail, options)

/** Anything thrown that is not a VerifyError means the verifier could not finish: unverifiable. */
export function toVerifyError(error: unknown): VerifyError {
  if (error instanceof VerifyError) return error
  return new VerifyError(
    'unverifiable',
    `could not complete the verification: ${messageOf(error)}`,
    undefined,
    { code: 'INTERNAL', cause: error }
  )
}

/** The message of anything thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
