import { describe, expect, it } from '@jest/globals'
import { createHash } from 'node:crypto'
import { computeCapability } from '../../src/protocol/capability.js'

const key = (fill: number) => new Uint8Array(32).fill(fill)
const digest = 'ab'.repeat(32)
const root = 'cd'.repeat(32)

describe('computeCapability', () => {
  it('follows docs/protocol.md section 5 byte for byte', () => {
    const expected = createHash('sha256')
      .update('openclaw/verify-model/capability/v1')
      .update(Uint8Array.of(0, 2))
      .update(key(1))
      .update(key(2))
      .update(Buffer.from(digest, 'hex'))
      .update(Buffer.from(root, 'hex'))
      .digest('hex')
    expect(computeCapability([key(2), key(1)], digest, root)).toBe(`ocap1:${expected}`)
  })

  it('counts each key once and does not depend on their order or on hex vs bytes', () => {
    const once = computeCapability([key(1), key(2)], digest, root)
    expect(
      computeCapability(
        [key(2), key(1), key(2)],
        Buffer.from(digest, 'hex'),
        Buffer.from(root, 'hex')
      )
    ).toBe(once)
    expect(computeCapability([key(1)], digest, root)).not.toBe(once)
    expect(computeCapability([key(1), key(2)], digest, 'ce'.repeat(32))).not.toBe(once)
  })

  it('sorts keys bytewise, not by their first byte as a signed number', () => {
    const high = key(0x80)
    const low = key(0x7f)
    const expected = createHash('sha256')
      .update('openclaw/verify-model/capability/v1')
      .update(Uint8Array.of(0, 2))
      .update(low)
      .update(high)
      .update(Buffer.from(digest + root, 'hex'))
      .digest('hex')
    expect(computeCapability([high, low], digest, root)).toBe(`ocap1:${expected}`)
  })

  it('rejects malformed inputs', () => {
    expect(() => computeCapability([], digest, root)).toThrow('needs 1 to 255 distinct keys, got 0')
    const many = Array.from({ length: 256 }, (_, i) =>
      Uint8Array.from({ length: 32 }, (_, j) => (j === 0 ? i : 7))
    )
    expect(() => computeCapability(many, digest, root)).toThrow('got 256')
    expect(() => computeCapability([new Uint8Array(31)], digest, root)).toThrow(
      'must be 32 bytes, got 31'
    )
    expect(() => computeCapability([key(1)], digest.toUpperCase(), root)).toThrow(
      'attestation digest: expected 64 lowercase hex'
    )
    expect(() => computeCapability([key(1)], digest, new Uint8Array(31))).toThrow(
      'model root: expected 32 bytes, got 31'
    )
  })
})
