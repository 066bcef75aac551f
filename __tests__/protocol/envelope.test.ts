import { describe, expect, it } from '@jest/globals'
import * as ed from '@noble/ed25519'
import { verifyAttestation } from '../../src/protocol/attestation.js'
import { attestationDigest } from '../../src/protocol/capability.js'
import { toHex } from '../../src/protocol/encoding.js'
import {
  MAX_ENVELOPE_BYTES,
  PAYLOAD_TYPE,
  pae,
  parseEnvelope,
  signEnvelope,
  verifyEnvelope
} from '../../src/protocol/envelope.js'
import {
  generateKeyPair,
  parsePrivateKey,
  parsePublicKey,
  publicKeyFromRaw
} from '../../src/protocol/keys.js'
import { createStatement } from '../../src/protocol/ledger.js'

const statement = createStatement({
  sourceUri: 'git+https://github.com/acme/tiny-model',
  gitCommit: '4b825dc642cb6eb9a060e54bf8d69288fbee4904',
  dependencies: [{ name: 'requirements.lock', sha256: 'a'.repeat(64) }],
  image: { uri: 'oci://ghcr.io/acme/trainer', sha256: 'c'.repeat(64) },
  build: { command: ['python3', 'train.py'], sourceDateEpoch: 1700000000, outputs: ['w.npy'] }
})

const newKey = () => {
  const pair = generateKeyPair()
  return {
    privateKey: parsePrivateKey(pair.privateKeyPem),
    publicKey: parsePublicKey(pair.publicKeyPem)
  }
}
const [a, b, c] = [newKey(), newKey(), newKey()]
const bytes = (s: string) => new TextEncoder().encode(s)
const invalidWith = (message: string) =>
  expect.objectContaining({ verdict: 'invalid', message: expect.stringContaining(message) })

describe('sign and verify round trip', () => {
  it('verifies what it signs and returns the exact statement bytes', () => {
    const sba = signEnvelope(statement, [a.privateKey])
    const result = verifyAttestation(bytes(sba), [a.publicKey], 1)
    expect(Buffer.from(result.statement).equals(Buffer.from(statement))).toBe(true)
    expect(result.keyIds).toEqual([a.publicKey.keyId])
    expect(result.ledger.build.outputs).toEqual(['w.npy'])
    const envelope = parseEnvelope(bytes(sba))
    expect(result.attestationDigest).toBe(attestationDigest(envelope))
    expect(envelope.signatures[0].keyid).toBe(a.publicKey.keyId)
  })

  it('counts distinct trusted keys towards the threshold', () => {
    const sba = bytes(signEnvelope(statement, [a.privateKey, b.privateKey, a.privateKey]))
    const trusted = [a.publicKey, b.publicKey, c.publicKey, a.publicKey]
    expect(verifyAttestation(sba, trusted, 2).keyIds).toEqual([
      a.publicKey.keyId,
      b.publicKey.keyId
    ])
    expect(() => verifyAttestation(sba, trusted, 3)).toThrow(
      expect.objectContaining({
        code: 'SIGNATURE_THRESHOLD',
        message: `SBA signatures: 2 of 3 trusted key(s) verified, threshold is 3; trusted key id(s) ${a.publicKey.keyId}, ${b.publicKey.keyId}, ${c.publicKey.keyId}; the SBA's signatures name key id(s) ${a.publicKey.keyId}, ${b.publicKey.keyId}, ${a.publicKey.keyId}`
      })
    )
  })

  it('names both the trusted key and the key the SBA says signed it (wrong key)', () => {
    const sba = bytes(signEnvelope(statement, [b.privateKey]))
    expect(() => verifyAttestation(sba, [a.publicKey], 1)).toThrow(
      expect.objectContaining({
        verdict: 'invalid',
        code: 'SIGNATURE_THRESHOLD',
        message: expect.stringContaining(
          `trusted key id(s) ${a.publicKey.keyId}; the SBA's signatures name key id(s) ${b.publicKey.keyId}`
        )
      })
    )
  })

  it('rejects a threshold that is not an integer from 1 to the number of distinct keys', () => {
    const env = parseEnvelope(bytes(signEnvelope(statement, [a.privateKey])))
    expect(() => verifyEnvelope(env, [a.publicKey], 0)).toThrow(
      invalidWith('threshold must be an integer of at least 1, got 0')
    )
    expect(() => verifyEnvelope(env, [a.publicKey], 1.5)).toThrow(invalidWith('got 1.5'))
    expect(() => verifyEnvelope(env, [a.publicKey, a.publicKey], 2)).toThrow(
      invalidWith('threshold 2 exceeds the 1 distinct trusted public key(s)')
    )
  })

  it('flipping any single byte of the SBA never verifies as anything but the same statement', () => {
    const sba = bytes(signEnvelope(statement, [a.privateKey]))
    const text = Buffer.from(sba).toString('latin1')
    const keyidStart = text.indexOf('"keyid"')
    const keyidEnd = text.indexOf('"', text.indexOf(a.publicKey.keyId)) + 1
    expect(keyidStart).toBeGreaterThan(0)
    const outcomes = { rejected: 0, hintOrWhitespace: 0 }
    for (let i = 0; i < sba.length; i++) {
      const flipped = Uint8Array.from(sba)
      flipped[i] ^= 0x01
      let result
      try {
        result = verifyAttestation(flipped, [a.publicKey], 1)
      } catch (error) {
        expect(error).toEqual(expect.objectContaining({ name: 'VerifyError', verdict: 'invalid' }))
        outcomes.rejected++
        continue
      }
      const inHint = i >= keyidStart && i < keyidEnd
      const isWhitespace = /\s/.test(text[i])
      if (!(inHint || isWhitespace)) throw new Error(`flip at ${i} ('${text[i]}') still verified`)
      expect(Buffer.from(result.statement).equals(Buffer.from(statement))).toBe(true)
      outcomes.hintOrWhitespace++
    }
    expect(outcomes.rejected + outcomes.hintOrWhitespace).toBe(sba.length)
    expect(outcomes.rejected).toBeGreaterThan(sba.length - 80)
  })
})

describe('parseEnvelope', () => {
  const good = JSON.parse(signEnvelope(statement, [a.privateKey]))
  const withChange = (change: (e: Record<string, unknown>) => void) => {
    const envelope = structuredClone(good)
    change(envelope)
    return bytes(JSON.stringify(envelope))
  }

  it.each([
    ['not an object', () => bytes('[]'), 'SBA: expected a JSON object'],
    ['not JSON', () => bytes('{"payloadType":'), 'SBA: payloadType: unexpected end of input'],
    [
      'duplicate key',
      () => bytes('{"payload": "", "payload": ""}'),
      "SBA: duplicate key 'payload'"
    ],
    [
      'payloadType missing',
      () => withChange(e => delete e.payloadType),
      'SBA payloadType: expected a string'
    ],
    [
      'payloadType wrong',
      () => withChange(e => (e.payloadType = 'application/json')),
      `SBA payloadType: expected '${PAYLOAD_TYPE}', got 'application/json'`
    ],
    [
      'payload not a string',
      () => withChange(e => (e.payload = 1)),
      'SBA payload: expected a base64 string'
    ],
    [
      'payload bad base64',
      () => withChange(e => (e.payload = 'a b')),
      'SBA payload: not valid base64'
    ],
    [
      'signatures missing',
      () => withChange(e => delete e.signatures),
      'SBA signatures: expected a non-empty array'
    ],
    [
      'signatures empty',
      () => withChange(e => (e.signatures = [])),
      'SBA signatures: expected a non-empty array'
    ],
    [
      'signature not an object',
      () => withChange(e => (e.signatures = ['x'])),
      "SBA signatures[0]: expected an object with 'sig'"
    ],
    [
      'sig missing',
      () => withChange(e => (e.signatures = [{ keyid: 'k' }])),
      'SBA signatures[0].sig: expected a base64 string'
    ],
    [
      'sig bad base64',
      () => withChange(e => (e.signatures = [good.signatures[0], { sig: 'QR==' }])),
      'SBA signatures[1].sig: not valid base64 (non-zero trailing bits)'
    ],
    [
      'keyid not a string',
      () => withChange(e => (e.signatures = [{ keyid: 1, sig: '' }])),
      'SBA signatures[0].keyid: expected a string'
    ]
  ])('rejects %s', (_, input, message) => {
    expect(() => parseEnvelope(input())).toThrow(invalidWith(message))
  })

  it('refuses an SBA over the size cap before parsing it', () => {
    const huge = new Uint8Array(MAX_ENVELOPE_BYTES + 1).fill(0x20)
    expect(() => parseEnvelope(huge)).toThrow(
      invalidWith(`exceeds the ${MAX_ENVELOPE_BYTES}-byte limit`)
    )
  })

  it('accepts a signature without keyid', () => {
    const env = parseEnvelope(withChange(e => (e.signatures = [{ sig: good.signatures[0].sig }])))
    expect(verifyEnvelope(env, [b.publicKey, a.publicKey], 1)).toEqual([a.publicKey])
  })
})

describe('strict Ed25519', () => {
  it('treats a signature of the wrong length as not verified', () => {
    const env = parseEnvelope(bytes(signEnvelope(statement, [a.privateKey])))
    env.signatures[0].sig = env.signatures[0].sig.subarray(0, 63)
    expect(() => verifyEnvelope(env, [a.publicKey], 1)).toThrow(invalidWith('0 of 1'))
  })

  it('rejects a small-order public key that ZIP-215 verification would accept', () => {
    const identity = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0))
    const sig = Uint8Array.from([...identity, ...new Uint8Array(32)]) // R = identity, S = 0
    const env = { payloadType: PAYLOAD_TYPE, payload: statement, signatures: [{ sig }] }
    expect(ed.verify(sig, pae(PAYLOAD_TYPE, statement), identity, { zip215: true })).toBe(true)
    expect(() => verifyEnvelope(env, [publicKeyFromRaw(identity)], 1)).toThrow(
      invalidWith('0 of 1')
    )
  })
})

describe('pae', () => {
  it('counts UTF-8 bytes, not characters', () => {
    expect(Buffer.from(pae('é', bytes('ü'))).toString('utf8')).toBe('DSSEv1 2 é 2 ü')
    expect(toHex(pae('', new Uint8Array(0)))).toBe(Buffer.from('DSSEv1 0  0 ').toString('hex'))
  })
})
