import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import { VerifyError } from '../../src/errors.js'
import { verifyAttestation } from '../../src/protocol/attestation.js'
import { decodeBase64Strict, sha256, toHex, utf8 } from '../../src/protocol/encoding.js'
import { MAX_SIGNATURES, PAYLOAD_TYPE, pae, signEnvelope } from '../../src/protocol/envelope.js'
import { privateKeyFromSeed, type PrivateKey } from '../../src/protocol/keys.js'
import { createStatement } from '../../src/protocol/ledger.js'
import { fuzzParameters, recordCounts } from './fuzz.js'

// Forgery: mutate a valid SBA in every way an attacker between the publisher and the verifier can
// (payload bytes, payloadType, signature bytes, keyids, base64 spellings, the signature list, the
// JSON text) and check each outcome against an oracle that knows only what was really signed.
//
// The oracle decodes what the mutated envelope says with its own base64 decoder and accepts it
// exactly when (1) it is a well-formed envelope (docs/protocol.md section 3), (2) its payloadType and
// payload bytes are those of a statement that was genuinely signed, and (3) at least `threshold`
// distinct trusted keys have, somewhere in the list, a signature byte-identical to the one that key
// made over that statement. Ed25519 signing is deterministic, so these are the only valid
// signatures a mutation can produce without a private key. A rejection must be `invalid`.

const key = (name: string): PrivateKey => privateKeyFromSeed(sha256(utf8(`forgery-fuzz-${name}`)))
const [alice, bob, mallory] = [key('alice'), key('bob'), key('mallory')]
const trusted = [alice.publicKey, bob.publicKey]

const statementFor = (gitCommit: string): Uint8Array =>
  createStatement({
    sourceUri: 'git+https://github.com/acme/tiny-model',
    gitCommit,
    dependencies: [{ name: 'requirements.lock', sha256: 'a'.repeat(64) }],
    dataset: { uri: 'https://data.example.org/d.tar.gz', treeSha256: 'b'.repeat(64) },
    image: { uri: 'oci://ghcr.io/acme/trainer', sha256: 'c'.repeat(64) },
    build: { command: ['python3', 'train.py'], sourceDateEpoch: 1700000000, outputs: ['w.npy'] }
  })

const original = statementFor('4b825dc642cb6eb9a060e54bf8d69288fbee4904')
/** Alice also signed another statement: splicing her signature over it is a classic attack. */
const otherSigned = statementFor('1'.repeat(40))
const neverSigned = statementFor('2'.repeat(40))

type Envelope = Record<string, unknown>
const envelopeOf = (statement: Uint8Array, keys: PrivateKey[]): Envelope =>
  JSON.parse(signEnvelope(statement, keys)) as Envelope

const originalEnvelope = envelopeOf(original, [alice, bob])
const otherEnvelope = envelopeOf(otherSigned, [alice])
const malloryEnvelope = envelopeOf(original, [mallory])

const signatureBytes = (envelope: Envelope, index: number): Uint8Array =>
  Buffer.from((envelope.signatures as { sig: string }[])[index].sig, 'base64')

/** Everything genuinely signed: a statement and, per key id, the signature over it. */
const genuine = [
  {
    payload: original,
    signatures: new Map([
      [alice.publicKey.keyId, signatureBytes(originalEnvelope, 0)],
      [bob.publicKey.keyId, signatureBytes(originalEnvelope, 1)],
      [mallory.publicKey.keyId, signatureBytes(malloryEnvelope, 0)]
    ])
  },
  {
    payload: otherSigned,
    signatures: new Map([[alice.publicKey.keyId, signatureBytes(otherEnvelope, 0)]])
  }
]

// An independent strict base64 decoder (docs/protocol.md section 3): standard or URL-safe alphabet,
// never both; padded or not, and padding only where it completes a quantum; zero trailing bits.
const STANDARD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const URL_SAFE = `${STANDARD.slice(0, 62)}-_`

function referenceBase64(text: string): Uint8Array | undefined {
  const body = text.replace(/=+$/, '')
  const padding = text.length - body.length
  if (padding > 2 || (padding > 0 && text.length % 4 !== 0) || body.length % 4 === 1)
    return undefined
  const standard = /[+/]/.test(body)
  const urlSafe = /[-_]/.test(body)
  if (standard && urlSafe) return undefined
  const alphabet = urlSafe ? URL_SAFE : STANDARD
  const out: number[] = []
  let bits = 0
  let value = 0
  for (const char of body) {
    const digit = alphabet.indexOf(char)
    if (digit === -1) return undefined
    value = (value << 6) | digit
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out.push(value >> bits)
      value &= (1 << bits) - 1
    }
  }
  return value === 0 ? Uint8Array.from(out) : undefined
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b))
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

interface Expected {
  payload: Uint8Array
  keyIds: string[]
}

/** What a correct verifier must accept for this parsed envelope, or undefined: reject. */
function oracle(envelope: unknown, threshold: number): Expected | undefined {
  if (!isObject(envelope) || envelope.payloadType !== PAYLOAD_TYPE) return undefined
  if (typeof envelope.payload !== 'string') return undefined
  const payload = referenceBase64(envelope.payload)
  const list = envelope.signatures
  if (payload === undefined || !Array.isArray(list)) return undefined
  if (list.length === 0 || list.length > MAX_SIGNATURES) return undefined
  const signatures: Uint8Array[] = []
  for (const entry of list) {
    if (!isObject(entry) || typeof entry.sig !== 'string') return undefined
    if (entry.keyid !== undefined && typeof entry.keyid !== 'string') return undefined
    const sig = referenceBase64(entry.sig)
    if (sig === undefined) return undefined
    signatures.push(sig)
  }
  const signed = genuine.find(g => sameBytes(g.payload, payload))
  if (signed === undefined) return undefined
  const keyIds = trusted
    .map(k => k.keyId)
    .filter(id => {
      const genuineSig = signed.signatures.get(id)
      return genuineSig !== undefined && signatures.some(sig => sameBytes(sig, genuineSig))
    })
  return keyIds.length >= threshold ? { payload, keyIds } : undefined
}

// --- mutations, as data so fast-check prints a readable counterexample ---

const jsonJunk = fc.jsonValue({ maxDepth: 2 })
const index = fc.nat({ max: 7 })
const byteValue = fc.integer({ min: 0, max: 255 })
const flip = fc.integer({ min: 1, max: 255 })
const target = fc.oneof(fc.constant<'payload'>('payload'), index)

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('payloadFlip'), pos: fc.nat(), xor: flip }),
  fc.record({ kind: fc.constant('payloadInsert'), pos: fc.nat(), byte: byteValue }),
  fc.record({ kind: fc.constant('payloadDelete'), pos: fc.nat() }),
  fc.record({
    kind: fc.constant('payloadAppend'),
    text: fc.constantFrom('\n', ' ', '{}', '\u0000')
  }),
  fc.record({
    kind: fc.constant('payloadReplace'),
    with: fc.constantFrom('otherSigned', 'neverSigned', 'empty')
  }),
  fc.record({ kind: fc.constant('payloadValue'), value: jsonJunk }),
  fc.record({
    kind: fc.constant('payloadType'),
    value: fc.oneof(
      fc.constantFrom(
        PAYLOAD_TYPE.toUpperCase(),
        `${PAYLOAD_TYPE} `,
        `${PAYLOAD_TYPE}; charset=utf-8`,
        'application/vnd.in-toto+JSON',
        'application/json',
        '',
        undefined
      ),
      fc.string(),
      jsonJunk
    )
  }),
  fc.record({ kind: fc.constant('sigFlip'), index, pos: fc.nat({ max: 63 }), xor: flip }),
  fc.record({ kind: fc.constant('sigResize'), index, length: fc.nat({ max: 130 }) }),
  fc.record({ kind: fc.constant('sigPlusL'), index }),
  fc.record({ kind: fc.constant('sigValue'), index, value: jsonJunk }),
  fc.record({
    kind: fc.constant('keyid'),
    index,
    value: fc.oneof(
      fc.constantFrom(alice.publicKey.keyId, bob.publicKey.keyId, mallory.publicKey.keyId, ''),
      fc.constant(undefined),
      fc.string(),
      jsonJunk
    )
  }),
  fc.record({
    kind: fc.constant('respell'),
    target,
    alphabet: fc.constantFrom<BufferEncoding>('base64', 'base64url'),
    padded: fc.boolean()
  }),
  fc.record({
    kind: fc.constant('misspell'),
    target,
    how: fc.constantFrom(
      'space',
      'newline',
      'extraPad',
      'swapAlphabet',
      'trailingBits',
      'dropChar',
      'caseFlip',
      'nonAscii'
    ),
    pos: fc.nat()
  }),
  fc.record({ kind: fc.constant('sigRemove'), index }),
  fc.record({ kind: fc.constant('sigDuplicate'), index }),
  fc.record({ kind: fc.constant('sigFlood'), count: fc.integer({ min: 8, max: 20 }) }),
  fc.record({
    kind: fc.constant('sigReorder'),
    order: fc.array(fc.double({ noNaN: true }), { maxLength: 8 })
  }),
  fc.record({
    kind: fc.constant('sigAdd'),
    source: fc.constantFrom('random', 'mallory', 'aliceOverOther', 'empty', 'notAnObject'),
    bytes: fc.uint8Array({ minLength: 64, maxLength: 64 }),
    keyid: fc.constantFrom(undefined, alice.publicKey.keyId, bob.publicKey.keyId, 'junk')
  }),
  fc.record({
    kind: fc.constant('signatures'),
    value: fc.oneof(fc.constant([]), fc.constant(undefined), jsonJunk)
  }),
  fc.record({
    kind: fc.constant('extraField'),
    name: fc.constantFrom('payload_type', 'Payload', 'sigs', '__proto__', 'constructor'),
    value: jsonJunk
  })
)
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never

// Applied to the JSON text after the structured mutations.
const textMutation = fc.oneof(
  fc.record({
    kind: fc.constant<'duplicateKey'>('duplicateKey'),
    key: fc.constantFrom('payload', 'payloadType', 'signatures'),
    atStart: fc.boolean()
  }),
  fc.record({
    kind: fc.constant<'byteFlips'>('byteFlips'),
    flips: fc.array(fc.record({ pos: fc.nat(), xor: flip }), { minLength: 1, maxLength: 3 })
  })
)
type TextMutation = typeof textMutation extends fc.Arbitrary<infer T> ? T : never

const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n

function applyMutation(envelope: Envelope, m: Mutation): void {
  const list = Array.isArray(envelope.signatures) ? (envelope.signatures as unknown[]) : undefined
  const entryAt = (i: number) => {
    const entry = list?.[i % Math.max(1, list.length)]
    return isObject(entry) ? entry : undefined
  }
  const bytesOf = (value: unknown) =>
    typeof value === 'string' ? referenceBase64(value) : undefined
  const editPayload = (edit: (bytes: number[]) => void) => {
    const bytes = bytesOf(envelope.payload)
    if (bytes === undefined) return
    const array = [...bytes]
    edit(array)
    envelope.payload = Buffer.from(array).toString('base64')
  }
  const editSig = (i: number, edit: (bytes: Uint8Array) => Uint8Array) => {
    const entry = entryAt(i)
    const bytes = bytesOf(entry?.sig)
    if (entry && bytes) entry.sig = Buffer.from(edit(bytes)).toString('base64')
  }
  const setText = (t: 'payload' | number, change: (text: string) => string) => {
    if (t === 'payload') {
      if (typeof envelope.payload === 'string') envelope.payload = change(envelope.payload)
    } else {
      const entry = entryAt(t)
      if (entry && typeof entry.sig === 'string') entry.sig = change(entry.sig)
    }
  }
  switch (m.kind) {
    case 'payloadFlip':
      return editPayload(b => {
        if (b.length > 0) b[m.pos % b.length] ^= m.xor
      })
    case 'payloadInsert':
      return editPayload(b => b.splice(m.pos % (b.length + 1), 0, m.byte))
    case 'payloadDelete':
      return editPayload(b => b.splice(m.pos % Math.max(1, b.length), 1))
    case 'payloadAppend':
      return editPayload(b => b.push(...Buffer.from(m.text)))
    case 'payloadReplace': {
      const bytes = { otherSigned, neverSigned, empty: Uint8Array.of() }[m.with]
      envelope.payload = Buffer.from(bytes).toString('base64')
      return
    }
    case 'payloadValue':
      envelope.payload = m.value
      return
    case 'payloadType':
      envelope.payloadType = m.value
      return
    case 'sigFlip':
      return editSig(m.index, b => {
        b[m.pos % Math.max(1, b.length)] ^= b.length > 0 ? m.xor : 0
        return b
      })
    case 'sigResize':
      return editSig(m.index, b => Uint8Array.from({ length: m.length }, (_, i) => b[i] ?? i))
    case 'sigPlusL':
      return editSig(m.index, b => {
        if (b.length !== 64) return b
        // S is little-endian; S + L < 2^254 still fits its 32 bytes.
        const s = BigInt(`0x${Buffer.from(b.subarray(32)).reverse().toString('hex')}`) + ED25519_L
        const sBytes = Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse()
        return Uint8Array.from([...b.subarray(0, 32), ...sBytes])
      })
    case 'sigValue': {
      const entry = entryAt(m.index)
      if (entry) entry.sig = m.value
      return
    }
    case 'keyid': {
      const entry = entryAt(m.index)
      if (entry) entry.keyid = m.value
      return
    }
    case 'respell':
      return setText(m.target, text => {
        const bytes = referenceBase64(text)
        if (bytes === undefined) return text
        const spelled = Buffer.from(bytes).toString(m.alphabet).replace(/=+$/, '')
        return m.padded ? spelled.padEnd(Math.ceil(spelled.length / 4) * 4, '=') : spelled
      })
    case 'misspell':
      return setText(m.target, text => misspell(text, m.how, m.pos))
    case 'sigRemove':
      list?.splice(m.index % Math.max(1, list.length), 1)
      return
    case 'sigDuplicate':
      if (list && list.length > 0) list.push(structuredClone(list[m.index % list.length]))
      return
    case 'sigFlood':
      list?.push(
        ...Array.from({ length: m.count }, () => ({ sig: Buffer.alloc(64).toString('base64') }))
      )
      return
    case 'sigReorder': {
      if (!list) return
      const keyed = list.map((entry, i) => ({ entry, sortKey: m.order[i] ?? i }))
      keyed.sort((x, y) => x.sortKey - y.sortKey)
      list.splice(0, list.length, ...keyed.map(k => k.entry))
      return
    }
    case 'sigAdd': {
      if (!list) return
      const sig = {
        random: () => m.bytes,
        mallory: () => signatureBytes(malloryEnvelope, 0),
        aliceOverOther: () => signatureBytes(otherEnvelope, 0),
        empty: () => Uint8Array.of(),
        notAnObject: () => undefined
      }[m.source]()
      if (sig === undefined) list.push(Buffer.from(m.bytes).toString('base64'))
      else list.push({ keyid: m.keyid, sig: Buffer.from(sig).toString('base64') })
      return
    }
    case 'signatures':
      envelope.signatures = m.value
      return
    case 'extraField':
      Object.defineProperty(envelope, m.name, {
        value: m.value,
        enumerable: true,
        configurable: true,
        writable: true
      })
      return
  }
}

function misspell(text: string, how: string, pos: number): string {
  const at = text.length === 0 ? 0 : pos % text.length
  const swap: Record<string, string> = { '+': '-', '/': '_', '-': '+', _: '/' }
  switch (how) {
    case 'space':
      return `${text.slice(0, at)} ${text.slice(at)}`
    case 'newline':
      return `${text.slice(0, at)}\n${text.slice(at)}`
    case 'extraPad':
      return `${text}=`
    case 'swapAlphabet': {
      const i = [...text].findIndex((c, j) => j >= at && c in swap)
      return i === -1 ? text : `${text.slice(0, i)}${swap[text[i]]}${text.slice(i + 1)}`
    }
    case 'trailingBits': {
      const body = text.replace(/=+$/, '')
      if (body.length % 4 < 2) return text
      const alphabet = /[-_]/.test(body) ? URL_SAFE : STANDARD
      const last = alphabet.indexOf(body.at(-1)!)
      return `${body.slice(0, -1)}${alphabet[last ^ 1]}${text.slice(body.length)}`
    }
    case 'dropChar':
      return text.slice(0, at) + text.slice(at + 1)
    case 'caseFlip': {
      const c = text[at] ?? ''
      const flipped = c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()
      return text.slice(0, at) + flipped + text.slice(at + 1)
    }
    default:
      return `${text.slice(0, at)}é${text.slice(at)}`
  }
}

function applyText(text: string, m: TextMutation | null): Uint8Array {
  if (m === null) return utf8(text)
  if (m.kind === 'duplicateKey') {
    const member = `"${m.key}":${JSON.stringify(otherEnvelope[m.key])}`
    return utf8(m.atStart ? `{${member},${text.slice(1)}` : `${text.slice(0, -1)},${member}}`)
  }
  const bytes = Buffer.from(text)
  for (const { pos, xor } of m.flips) bytes[pos % bytes.length] ^= xor
  return Uint8Array.from(bytes)
}

/** What the JSON text says, as an independent reader sees it; undefined when it is not JSON. */
function readIndependently(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    return undefined
  }
}

describe('forgery: mutated SBAs against an oracle of what was really signed', () => {
  it.each([1, 2])('accepts exactly what the oracle accepts, threshold %i', threshold => {
    const counts = { cases: 0, accepted: 0, rejected: 0, forgeriesAccepted: 0, validRejected: 0 }
    const genuineKeyIds = trusted.map(k => k.keyId)
    fc.assert(
      fc.property(
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.oneof(
          { weight: 4, arbitrary: fc.constant(null) },
          { weight: 1, arbitrary: textMutation }
        ),
        fc.boolean(),
        (mutations, text, pretty) => {
          counts.cases++
          const envelope = structuredClone(originalEnvelope)
          for (const m of mutations) applyMutation(envelope, m)
          const bytes = applyText(JSON.stringify(envelope, null, pretty ? 2 : 0), text)
          // A text mutation (duplicate keys, flipped bytes) can only be judged through what an
          // independent reader makes of the text; the oracle then says whether acceptance is right.
          const expected = oracle(text === null ? envelope : readIndependently(bytes), threshold)
          let result
          try {
            result = verifyAttestation(bytes, trusted, threshold)
          } catch (error) {
            expect(error).toBeInstanceOf(VerifyError)
            expect((error as VerifyError).verdict).toBe('invalid')
            counts.rejected++
            // Byte flips may break what an independent reader still accepts (e.g. a duplicate key
            // it silently resolves): rejecting is always safe there; structured mutations must
            // be accepted when the oracle says so.
            const wronglyRejected = expected !== undefined && text === null
            if (wronglyRejected) counts.validRejected++
            return !wronglyRejected
          }
          counts.accepted++
          if (expected === undefined) {
            counts.forgeriesAccepted++
            return false
          }
          expect(sameBytes(result.statement, expected.payload)).toBe(true)
          expect(result.keyIds).toEqual(genuineKeyIds.filter(id => expected.keyIds.includes(id)))
          expect(result.attestationDigest).toBe(toHex(sha256(pae(PAYLOAD_TYPE, expected.payload))))
          return true
        }
      ),
      fuzzParameters(0.3)
    )
    recordCounts(`forgery-threshold-${threshold}`, counts)
    expect(counts.forgeriesAccepted).toBe(0)
    expect(counts.validRejected).toBe(0)
    // Both sides were exercised: some mutations keep a valid SBA, most break it.
    expect(counts.accepted).toBeGreaterThan(0)
    expect(counts.rejected).toBeGreaterThan(counts.accepted)
  })

  it('accepts every alternative spelling of the same bytes, and nothing else', () => {
    // Standard or URL-safe, padded or not (docs/protocol.md section 3): four spellings of one value.
    const counts = { cases: 0, accepted: 0, rejected: 0, disagreements: 0 }
    const spellings = (bytes: Uint8Array) => {
      const std = Buffer.from(bytes).toString('base64')
      const url = Buffer.from(bytes).toString('base64url')
      return [std, std.replace(/=+$/, ''), url, url.padEnd(std.length, '=')]
    }
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.string({ unit: fc.constantFrom(...`${STANDARD}-_= \n.é`), maxLength: 60 }),
        (bytes, noise) => {
          for (const spelled of spellings(bytes)) {
            counts.cases++
            expect(toHex(decodeBase64Strict(spelled, 'x'))).toBe(toHex(bytes))
            counts.accepted++
          }
          counts.cases++
          const reference = referenceBase64(noise)
          let decoded: Uint8Array | undefined
          try {
            decoded = decodeBase64Strict(noise, 'x')
            counts.accepted++
          } catch (error) {
            expect((error as VerifyError).verdict).toBe('invalid')
            counts.rejected++
          }
          const agree = decoded === undefined ? reference === undefined : reference !== undefined
          const disagree = !agree || (decoded && reference && !sameBytes(decoded, reference))
          if (disagree) counts.disagreements++
          return !disagree
        }
      ),
      fuzzParameters(0.1)
    )
    recordCounts('base64-spellings', counts)
    expect(counts.disagreements).toBe(0)
  })
})
