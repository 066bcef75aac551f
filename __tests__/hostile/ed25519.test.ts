import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from '@jest/globals'
import * as ed from '@noble/ed25519'
import { VerifyError } from '../../src/errors.js'
import { getPublicKey, sign, verifyStrict } from '../../src/protocol/ed25519.js'
import { sha256, toHex, utf8 } from '../../src/protocol/encoding.js'
import { PAYLOAD_TYPE, pae, verifyEnvelope, type Envelope } from '../../src/protocol/envelope.js'
import {
  parsePublicKey,
  privateKeyFromSeed,
  publicKeyFromRaw,
  publicKeyPem
} from '../../src/protocol/keys.js'
import { repoRoot } from '../helpers/paths.js'
import { recordCounts } from './fuzz.js'

// Strict RFC 8032 verification as the verifier uses it: the RFC's own vectors, every Wycheproof
// Ed25519 case, and the cases a lenient (ZIP-215 or non-range-checking) verifier would accept.

const fixtures = path.join(repoRoot, '__tests__/fixtures/ed25519')
const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'))

interface RfcVector {
  name: string
  secretKey: string
  publicKey: string
  message: string
  signature: string
}
const rfc8032 = (
  JSON.parse(readFileSync(path.join(fixtures, 'rfc8032.json'), 'utf8')) as {
    vectors: RfcVector[]
  }
).vectors

interface WycheproofTest {
  tcId: number
  flags: string[]
  msg: string
  sig: string
  result: 'valid' | 'invalid' | 'acceptable'
}
const wycheproof = (
  JSON.parse(readFileSync(path.join(fixtures, 'wycheproof-ed25519.json'), 'utf8')) as {
    numberOfTests: number
    testGroups: { publicKey: string; tests: WycheproofTest[] }[]
  }
).testGroups.flatMap(group => group.tests.map(test => ({ ...test, publicKey: group.publicKey })))

const invalidWith = (message: string) =>
  expect.objectContaining({
    name: 'VerifyError',
    verdict: 'invalid',
    message: expect.stringContaining(message)
  })

const statement = utf8('{"_type": "https://in-toto.io/Statement/v1"}')
const message = pae(PAYLOAD_TYPE, statement)
const envelopeWith = (sig: Uint8Array): Envelope => ({
  payloadType: PAYLOAD_TYPE,
  payload: statement,
  signatures: [{ sig }]
})
const signer = privateKeyFromSeed(sha256(utf8('ed25519-hostile')))

describe('RFC 8032 section 7.1', () => {
  it.each(rfc8032.map(v => [v.name, v] as const))(
    '%s: key, signature and strict verify',
    (_, v) => {
      const seed = hex(v.secretKey)
      expect(toHex(getPublicKey(seed))).toBe(v.publicKey)
      expect(toHex(sign(hex(v.message), seed))).toBe(v.signature)
      expect(verifyStrict(hex(v.signature), hex(v.message), hex(v.publicKey))).toBe(true)
      // One bit more or less in the message and the same signature no longer verifies.
      const msg = hex(v.message)
      const altered = msg.length === 0 ? Uint8Array.of(0) : msg.map((b, i) => (i === 0 ? b ^ 1 : b))
      expect(verifyStrict(hex(v.signature), altered, hex(v.publicKey))).toBe(false)
    }
  )

  it('the vector keys parse in every accepted form to the same key id', () => {
    for (const v of rfc8032) {
      const key = publicKeyFromRaw(hex(v.publicKey))
      const forms = [
        v.publicKey,
        Buffer.from(hex(v.publicKey)).toString('base64'),
        publicKeyPem(key)
      ]
      expect(forms.map(form => parsePublicKey(form).keyId)).toEqual([
        key.keyId,
        key.keyId,
        key.keyId
      ])
    }
  })
})

describe('Wycheproof ed25519_test.json', () => {
  it('has every case of the upstream file and no acceptable result to interpret', () => {
    expect(wycheproof).toHaveLength(151)
    expect(new Set(wycheproof.map(t => t.tcId)).size).toBe(151)
    // "acceptable" would leave the choice to the implementation; this file has none, so every
    // case has one right answer and strict verification must give it.
    expect(wycheproof.filter(t => t.result === 'acceptable')).toEqual([])
  })

  it('strict verification agrees with every result', () => {
    const disagreements = wycheproof.filter(
      t => verifyStrict(hex(t.sig), hex(t.msg), hex(t.publicKey)) !== (t.result === 'valid')
    )
    expect(disagreements.map(t => t.tcId)).toEqual([])
    const counts = {
      vectors: wycheproof.length + rfc8032.length,
      wycheproofValid: wycheproof.filter(t => t.result === 'valid').length,
      wycheproofInvalid: wycheproof.filter(t => t.result === 'invalid').length,
      rfc8032: rfc8032.length,
      disagreements: disagreements.length
    }
    recordCounts('ed25519-vectors', counts)
  })

  it('every case, as an SBA signature under its key, fails as invalid and never throws anything else', () => {
    for (const t of wycheproof) {
      // The SBA signs PAE(payload), not the vector's message: none of these may verify.
      let thrown: unknown
      try {
        verifyEnvelope(envelopeWith(hex(t.sig)), [publicKeyFromRaw(hex(t.publicKey))], 1)
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(VerifyError)
      expect(thrown).toEqual(invalidWith('0 of 1 trusted key(s) verified'))
    }
  })
})

// The 8 points of order dividing 8 (canonical encodings), then non-canonical encodings of them:
// y >= p, or x = 0 with the sign bit set (RFC 8032 section 5.1.3 rejects both).
const SMALL_ORDER = {
  'identity (order 1)': '0100000000000000000000000000000000000000000000000000000000000000',
  'order 2': 'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'order 4, x positive': '0000000000000000000000000000000000000000000000000000000000000000',
  'order 4, x negative': '0000000000000000000000000000000000000000000000000000000000000080',
  'order 8 (a)': 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'order 8 (b)': 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  'order 8 (c)': '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'order 8 (d)': '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85'
}
const NON_CANONICAL_SMALL_ORDER = {
  'identity, y = p + 1': 'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'identity, y = p + 1, sign set':
    'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  'identity, sign set': '0100000000000000000000000000000000000000000000000000000000000080',
  'order 2, sign set': 'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  'order 4, y = p': 'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'order 4, y = p, sign set': 'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'
}

describe('small-order public keys', () => {
  // R = identity, S = 0 satisfies the cofactored equation [8]SB = [8]R + [8]kA for every
  // small-order A and every message: a "signature" anyone can make without a private key.
  const universal = Uint8Array.from([1, ...new Uint8Array(63)])

  it.each(Object.entries(SMALL_ORDER))(
    '%s: a ZIP-215 verifier accepts a keyless signature, strict verification does not',
    (_, encoding) => {
      expect(ed.verify(universal, message, hex(encoding), { zip215: true })).toBe(true)
      expect(verifyStrict(universal, message, hex(encoding))).toBe(false)
      expect(() =>
        verifyEnvelope(envelopeWith(universal), [publicKeyFromRaw(hex(encoding))], 1)
      ).toThrow(invalidWith('0 of 1 trusted key(s) verified'))
    }
  )

  it.each(Object.entries(NON_CANONICAL_SMALL_ORDER))(
    '%s: rejected as a point by strict decoding',
    (_, encoding) => {
      expect(verifyStrict(universal, message, hex(encoding))).toBe(false)
      expect(() =>
        verifyEnvelope(envelopeWith(universal), [publicKeyFromRaw(hex(encoding))], 1)
      ).toThrow(invalidWith('0 of 1 trusted key(s) verified'))
    }
  )

  it('a small-order key listed beside the real one adds nothing towards a threshold of 2', () => {
    const good = sign(message, signer.seed)
    const envelope = { ...envelopeWith(good), signatures: [{ sig: good }, { sig: universal }] }
    const identity = publicKeyFromRaw(hex(SMALL_ORDER['identity (order 1)']))
    expect(verifyEnvelope(envelope, [signer.publicKey, identity], 1)).toEqual([signer.publicKey])
    expect(() => verifyEnvelope(envelope, [signer.publicKey, identity], 2)).toThrow(
      invalidWith('1 of 2 trusted key(s) verified, threshold is 2')
    )
  })
})

describe('non-canonical S and wrong lengths', () => {
  const L = 2n ** 252n + 27742317777372353535851937790883648493n
  const littleEndian = (n: bigint) => Buffer.from(n.toString(16).padStart(64, '0'), 'hex').reverse()
  const scalarOf = (bytes: Uint8Array) =>
    BigInt(`0x${Buffer.from(bytes).reverse().toString('hex')}`)

  it.each([
    ['S + L', 1n],
    ['S + 2L', 2n],
    ['S + 8L', 8n]
  ])('%s: the same scalar mod L, rejected', (_, multiple) => {
    const good = sign(message, signer.seed)
    const s = scalarOf(good.subarray(32))
    const malleated = Uint8Array.from([...good.subarray(0, 32), ...littleEndian(s + multiple * L)])
    expect(scalarOf(malleated.subarray(32)) % L).toBe(s)
    expect(verifyStrict(good, message, signer.publicKey.raw)).toBe(true)
    expect(verifyStrict(malleated, message, signer.publicKey.raw)).toBe(false)
    expect(() => verifyEnvelope(envelopeWith(malleated), [signer.publicKey], 1)).toThrow(
      invalidWith('0 of 1 trusted key(s) verified')
    )
  })

  it.each([0, 1, 32, 63, 65, 96, 128])(
    'a %i-byte signature is not verified, without a TypeError',
    length => {
      const good = sign(message, signer.seed)
      const resized = Uint8Array.from({ length }, (_, i) => good[i % 64])
      expect(verifyStrict(resized, message, signer.publicKey.raw)).toBe(false)
      expect(() => verifyEnvelope(envelopeWith(resized), [signer.publicKey], 1)).toThrow(
        invalidWith('0 of 1 trusted key(s) verified')
      )
    }
  )

  it.each([0, 31, 33, 64])(
    'a %i-byte public key is refused as invalid, never a TypeError',
    length => {
      const raw = new Uint8Array(length).fill(9)
      expect(() => publicKeyFromRaw(raw)).toThrow(
        invalidWith(`Ed25519 public key must be 32 bytes, got ${length}`)
      )
      expect(() => parsePublicKey(Buffer.from(raw).toString('base64'), '--public-key')).toThrow(
        expect.objectContaining({ name: 'VerifyError', verdict: 'invalid' })
      )
      // verifyStrict itself never throws, whatever lengths reach it.
      expect(verifyStrict(sign(message, signer.seed), message, raw)).toBe(false)
    }
  )
})
