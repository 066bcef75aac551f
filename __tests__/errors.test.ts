import { describe, expect, it } from '@jest/globals'
import { VerifyError, invalid, isPassing } from '../src/errors.js'

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
