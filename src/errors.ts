/** Every outcome of a verification, as docs/protocol.md section 6 names them. */
export type Verdict = 'verified' | 'reproduced' | 'mismatch' | 'unverifiable' | 'invalid'

export type FailingVerdict = Exclude<Verdict, 'verified' | 'reproduced'>

const PASSING_VERDICTS: readonly Verdict[] = ['verified', 'reproduced']

export function isPassing(verdict: Verdict): boolean {
  return PASSING_VERDICTS.includes(verdict)
}

/**
 * The one error type of the project: a failing verdict and one line for humans that names
 * what was wrong (the field, the file, both digests) and, where there is one, the fix.
 * `detail` carries longer material (a build log tail) that reports show apart from the message.
 */
export class VerifyError extends Error {
  override readonly name = 'VerifyError'

  constructor(
    readonly verdict: FailingVerdict,
    message: string,
    readonly detail?: string
  ) {
    super(message)
  }
}

export const invalid = (message: string, detail?: string): VerifyError =>
  new VerifyError('invalid', message, detail)
export const unverifiable = (message: string, detail?: string): VerifyError =>
  new VerifyError('unverifiable', message, detail)
export const mismatch = (message: string, detail?: string): VerifyError =>
  new VerifyError('mismatch', message, detail)

/** Anything thrown that is not a VerifyError means the verifier could not finish: unverifiable. */
export function toVerifyError(error: unknown): VerifyError {
  if (error instanceof VerifyError) return error
  return new VerifyError('unverifiable', `could not complete the verification: ${messageOf(error)}`)
}

/** The message of anything thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
