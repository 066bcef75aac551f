import { describe, expect, it } from '@jest/globals'
import { VerifyError, invalid, isPassing, toVerifyError } from '../src/errors.js'

describe('VerifyError', () => {
  it('carries its verdict, message and detail', () => {
    const e = invalid('predicate.build.outputs[0]: ".." segment not allowed', 'tail')
    expect(e).toBeInstanceOf(VerifyError)
    expect(e.verdict).toBe('invalid')
    expect(e.message).toContain('outputs[0]')
    expect(e.detail).toBe('tail')
  })
  it('knows which verdicts pass', () => {
    expect(isPassing('verified')).toBe(true)
    expect(isPassing('reproduced')).toBe(true)
    expect(isPassing('mismatch')).toBe(false)
    expect(isPassing('invalid')).toBe(false)
    expect(isPassing('unverifiable')).toBe(false)
  })
})

describe('codes and causes', () => {
  it('a factory without options keeps working; the code defaults to the verdict', () => {
    expect(invalid('x')).toMatchObject({ verdict: 'invalid', code: 'INVALID', detail: undefined })
    expect(invalid('x', 'tail', { code: 'LEDGER_FIELD' })).toMatchObject({
      code: 'LEDGER_FIELD',
      detail: 'tail'
    })
  })

  it('toVerifyError keeps what was thrown as the cause', () => {
    const thrown = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })
    const error = toVerifyError(thrown)
    expect(error).toMatchObject({
      verdict: 'unverifiable',
      code: 'INTERNAL',
      message: 'could not complete the verification: EACCES: permission denied'
    })
    expect(error.cause).toBe(thrown)
    const known = invalid('y', undefined, { code: 'KEY_FORMAT', cause: thrown })
    expect(toVerifyError(known)).toBe(known)
    expect(known.cause).toBe(thrown)
  })
})
