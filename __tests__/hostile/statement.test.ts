import { beforeAll, describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import { VerifyError } from '../../src/errors.js'
import { verifyAttestation } from '../../src/protocol/attestation.js'
import { sha256, utf8 } from '../../src/protocol/encoding.js'
import {
  MAX_ENVELOPE_BYTES,
  MAX_SIGNATURES,
  PAYLOAD_TYPE,
  signEnvelope
} from '../../src/protocol/envelope.js'
import { privateKeyFromSeed } from '../../src/protocol/keys.js'
import { parseStatement, type Ledger } from '../../src/protocol/ledger.js'
import { MAX_DEPTH, parseStrictJson } from '../../src/protocol/strict-json.js'
import { normalizedEnv, RESERVED_ENV } from '../../src/protocol/contract-env.js'
import { fuzzParameters, recordCounts, runsFor } from './fuzz.js'

// The statement parser under arbitrary and adversarial JSON: it returns a ledger that keeps every
// rule of PROTOCOL.md section 2, or throws VerifyError invalid with a one-line message; nothing
// else escapes, and no object prototype changes.

type Json = Record<string, unknown>

const baseStatement = (): Json => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [
    {
      name: 'source',
      uri: 'git+https://github.com/acme/m',
      digest: { gitCommit: '4b825dc642cb6eb9a060e54bf8d69288fbee4904' }
    }
  ],
  predicateType: 'https://openclaw.dev/build-ledger/v1',
  predicate: {
    source: {
      uri: 'git+https://github.com/acme/m',
      digest: { gitCommit: '4b825dc642cb6eb9a060e54bf8d69288fbee4904' }
    },
    dependencies: [{ name: 'requirements.lock', digest: { sha256: 'a'.repeat(64) } }],
    dataset: { uri: 'https://example.org/d.tar.gz', digest: { treeSha256: 'b'.repeat(64) } },
    environment: {
      uri: 'oci://ghcr.io/acme/trainer',
      digest: { sha256: 'c'.repeat(64) },
      platform: 'linux/amd64'
    },
    build: {
      command: ['python3', 'train.py'],
      env: { SEED: '0' },
      sourceDateEpoch: 1700000000,
      outputs: ['model.safetensors', 'config.json'],
      workdir: 'train',
      network: 'none',
      timeoutSeconds: 3600,
      cpus: 2,
      gpus: 'none'
    }
  }
})

/** Every path to a value in the base statement, to aim mutations at. */
function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof value !== 'object' || value === null) return [prefix]
  const children = Object.entries(value).flatMap(([k, v]) =>
    pathsOf(v, [...prefix, Array.isArray(value) ? Number(k) : k])
  )
  return [prefix, ...children]
}
const PATHS = pathsOf(baseStatement())

const bytesOf = (text: string) => new TextEncoder().encode(text)

/** The prototypes a polluting parser would touch, as they are before any test runs. */
const PROTOTYPES = [Object.prototype, Array.prototype, Function.prototype, String.prototype]
const snapshot = () => PROTOTYPES.map(p => Object.getOwnPropertyNames(p).sort().join(','))

/** A rejection is VerifyError invalid with a non-empty message on one line. */
function expectInvalid(error: unknown): void {
  if (!(error instanceof VerifyError)) throw error
  expect(error.verdict).toBe('invalid')
  expect(error.message).toMatch(/^[^\r\n]+$/)
}

/** The rules of PROTOCOL.md section 2 that a returned ledger must keep, checked independently. */
function expectLawful(ledger: Ledger): void {
  const lawfulPath = (p: string) =>
    p !== '' &&
    !p.startsWith('/') &&
    !p.includes('\\') &&
    !p.includes('\u0000') &&
    p.split('/').every(segment => !['', '.', '..'].includes(segment))
  const hex = (s: string, length: number) => new RegExp(`^[0-9a-f]{${length}}$`).test(s)
  const { build } = ledger
  expect(hex(ledger.source.gitCommit, 40) || hex(ledger.source.gitCommit, 64)).toBe(true)
  expect(ledger.dependencies.every(d => lawfulPath(d.name) && hex(d.sha256, 64))).toBe(true)
  expect(ledger.dataset === undefined || hex(ledger.dataset.treeSha256, 64)).toBe(true)
  expect(hex(ledger.environment.sha256, 64)).toBe(true)
  expect(build.command.length > 0 && build.command.every(a => typeof a === 'string')).toBe(true)
  expect(build.outputs === undefined || build.outputs.every(lawfulPath)).toBe(true)
  expect(build.workdir === '.' || lawfulPath(build.workdir)).toBe(true)
  expect(Number.isSafeInteger(build.sourceDateEpoch) && build.sourceDateEpoch >= 0).toBe(true)
  expect(Object.getPrototypeOf(build.env)).toBe(Object.prototype)
  for (const [name, value] of Object.entries(build.env)) {
    expect(name).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/)
    expect(RESERVED_ENV).not.toContain(name)
    expect(typeof value).toBe('string')
  }
}

// Raw JSON text that JSON.stringify cannot write: placed where a marker string was.
const RAW_VALUES = [
  '1e400',
  '-1e400',
  '-0',
  '1e21',
  '1.0',
  '1E3',
  '1700000000.5',
  '123456789012345678901234567890',
  `${'['.repeat(MAX_DEPTH + 1)}${']'.repeat(MAX_DEPTH + 1)}`,
  '"\\ud800"',
  '"a\\u0000b"'
]
const INVALID_UTF8 = [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]]
const HOSTILE_STRINGS = [
  '..',
  '../x',
  'a/../b',
  '/abs',
  'a\\b',
  'C:\\x',
  'a//b',
  'a/',
  './a',
  '',
  'a\u0000b',
  'line\nbreak',
  '\u202eevil',
  '__proto__',
  'constructor'
]
const DANGEROUS_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty']

const value = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(...HOSTILE_STRINGS),
  fc.constantFrom(-1, 0, 2 ** 53, Number.MAX_SAFE_INTEGER, 1.5, 1e21)
)
const pathIndex = fc.nat()
const mutation = fc.oneof(
  fc.record({ op: fc.constant<'set'>('set'), at: pathIndex, value }),
  fc.record({ op: fc.constant<'delete'>('delete'), at: pathIndex }),
  fc.record({
    op: fc.constant<'addKey'>('addKey'),
    at: pathIndex,
    key: fc.oneof(fc.constantFrom(...DANGEROUS_KEYS), fc.string({ maxLength: 8 })),
    value
  }),
  fc.record({ op: fc.constant<'raw'>('raw'), at: pathIndex, raw: fc.constantFrom(...RAW_VALUES) }),
  fc.record({ op: fc.constant<'duplicate'>('duplicate'), at: pathIndex, value }),
  fc.record({
    op: fc.constant<'badUtf8'>('badUtf8'),
    at: pathIndex,
    bytes: fc.constantFrom(...INVALID_UTF8)
  })
)
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never

const MARKER = (i: number) => `@@marker-${i}@@`

/**
 * The statement's bytes after the mutations. Structured edits change the object; raw text,
 * duplicate keys and invalid UTF-8 go in through marker strings replaced in the serialized text.
 */
function mutatedStatement(mutations: Mutation[]): Uint8Array {
  const statement = baseStatement()
  const textEdits: [string, string][] = []
  const byteEdits: [string, number[]][] = []
  mutations.forEach((m, i) => {
    const path = PATHS[m.at % PATHS.length]
    const parent = path.slice(0, -1).reduce<unknown>((node, key) => {
      return typeof node === 'object' && node !== null ? (node as Json)[key] : undefined
    }, statement) as Json | undefined
    const key = path.at(-1)
    const container = path.reduce<unknown>((node, k) => {
      return typeof node === 'object' && node !== null ? (node as Json)[k] : undefined
    }, statement)
    const put = (target: Json | undefined, k: string | number | undefined, v: unknown) => {
      if (typeof target !== 'object' || target === null || k === undefined) return
      Object.defineProperty(target, k, {
        value: v,
        enumerable: true,
        configurable: true,
        writable: true
      })
    }
    switch (m.op) {
      case 'set':
        return put(parent, key, m.value)
      case 'delete':
        if (typeof parent === 'object' && parent !== null && key !== undefined) delete parent[key]
        return
      case 'addKey':
        if (!Array.isArray(container)) put(container as Json, m.key, m.value)
        return
      case 'raw':
        put(parent, key, MARKER(i))
        textEdits.push([JSON.stringify(MARKER(i)), m.raw])
        return
      case 'duplicate':
        // A second member with the same key as an existing one, which JSON.parse would let win.
        if (typeof key === 'string' && parent && !Array.isArray(parent)) {
          put(parent, MARKER(i), m.value)
          textEdits.push([JSON.stringify(MARKER(i)), JSON.stringify(key)])
        }
        return
      case 'badUtf8':
        put(parent, key, MARKER(i))
        byteEdits.push([MARKER(i), m.bytes])
        return
    }
  })
  let text = JSON.stringify(statement, null, 1)
  for (const [marker, raw] of textEdits) text = text.replace(marker, raw)
  let bytes = Buffer.from(text)
  for (const [marker, raw] of byteEdits) {
    const at = bytes.indexOf(marker)
    if (at !== -1)
      bytes = Buffer.concat([
        bytes.subarray(0, at),
        Buffer.from(raw),
        bytes.subarray(at + marker.length)
      ])
  }
  return Uint8Array.from(bytes)
}

describe('the statement parser under hostile JSON', () => {
  let prototypesBefore: string[]
  beforeAll(() => {
    prototypesBefore = snapshot()
  })

  it('parses any JSON value exactly like JSON.parse, and as a statement only rejects it', () => {
    const counts = { cases: 0, rejected: 0 }
    fc.assert(
      fc.property(fc.jsonValue(), fc.boolean(), (doc, pretty) => {
        counts.cases++
        const text = JSON.stringify(doc, null, pretty ? 2 : 0)
        expect(JSON.stringify(parseStrictJson(bytesOf(text), 'doc'))).toBe(
          JSON.stringify(JSON.parse(text))
        )
        try {
          parseStatement(bytesOf(text))
        } catch (error) {
          expectInvalid(error)
          counts.rejected++
          return
        }
        throw new Error(`accepted a random JSON value as a statement: ${text.slice(0, 200)}`)
      }),
      fuzzParameters(0.1)
    )
    recordCounts('statement-arbitrary-json', counts)
    expect(counts.rejected).toBe(counts.cases)
  })

  it('on arbitrary bytes: accepts only what JSON.parse accepts, rejecting only for a strict rule', () => {
    const counts = { cases: 0, accepted: 0, rejected: 0 }
    // What this parser refuses although JSON.parse takes it: each is a rule of the parser.
    const strictRules =
      /duplicate key|lone UTF-16 surrogate|not valid UTF-8|nesting deeper|number out of range|U\+FEFF/
    const jsonish = fc.string({
      unit: fc.constantFrom(...'{}[]":,0123456789-+.eE tfnrulasx\\/\n\u00e9\ud800'.split('')),
      maxLength: 40
    })
    fc.assert(
      fc.property(fc.oneof(jsonish.map(bytesOf), fc.uint8Array({ maxLength: 40 })), bytes => {
        counts.cases++
        let independent: { value: unknown } | undefined
        try {
          independent = { value: JSON.parse(new TextDecoder().decode(bytes)) }
        } catch {
          independent = undefined
        }
        let parsed: unknown
        try {
          parsed = parseStrictJson(bytes, 'doc')
        } catch (error) {
          expectInvalid(error)
          counts.rejected++
          if (independent !== undefined) expect((error as Error).message).toMatch(strictRules)
          return
        }
        counts.accepted++
        expect(independent).toBeDefined()
        expect(JSON.stringify(parsed)).toBe(JSON.stringify(independent!.value))
      }),
      fuzzParameters(0.1)
    )
    recordCounts('strict-json-bytes', counts)
    expect(counts.accepted).toBeGreaterThan(0)
  })

  it('ledger-shaped mutations: a lawful ledger or a one-line invalid, nothing else', () => {
    const counts = { cases: 0, accepted: 0, rejected: 0 }
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 5 }), mutations => {
        counts.cases++
        let ledger: Ledger
        try {
          ledger = parseStatement(mutatedStatement(mutations))
        } catch (error) {
          expectInvalid(error)
          counts.rejected++
          return
        }
        counts.accepted++
        expectLawful(ledger)
      }),
      fuzzParameters(0.15)
    )
    recordCounts('statement-ledger-mutations', counts)
    expect(counts.accepted).toBeGreaterThan(0)
    expect(counts.rejected).toBeGreaterThan(0)
  })

  it.each([
    ['1e400', 'predicate.build.sourceDateEpoch: number out of range: 1e400'],
    ['-1e400', 'number out of range: -1e400'],
    ['1e21', 'predicate.build.sourceDateEpoch: expected an integer, got 1e+21'],
    ['-1', 'predicate.build.sourceDateEpoch: expected an integer from 0'],
    [
      '9007199254740993',
      'predicate.build.sourceDateEpoch: expected an integer, got 9007199254740992'
    ]
  ])('sourceDateEpoch %s is invalid', (raw, message) => {
    const text = JSON.stringify(baseStatement()).replace('1700000000', raw)
    expect(() => parseStatement(bytesOf(text))).toThrow(
      expect.objectContaining({ verdict: 'invalid', message: expect.stringContaining(message) })
    )
  })

  it('sourceDateEpoch -0 is zero, and reaches the build as SOURCE_DATE_EPOCH=0', () => {
    const text = JSON.stringify(baseStatement()).replace('1700000000', '-0')
    const ledger = parseStatement(bytesOf(text))
    expect(normalizedEnv(ledger.build).SOURCE_DATE_EPOCH).toBe('0')
  })

  it('rejects invalid UTF-8 inside a string of the statement', () => {
    const text = Buffer.from(JSON.stringify(baseStatement()))
    const at = text.indexOf('train.py')
    text[at] = 0xff
    expect(() => parseStatement(Uint8Array.from(text))).toThrow('statement: not valid UTF-8')
  })

  it('leaves every object prototype as it was', () => {
    expect(snapshot()).toEqual(prototypesBefore)
    const probe = {} as Record<string, unknown>
    for (const key of ['polluted', '0', 'x', 'SEED', 'command', 'predicate'])
      expect(probe[key]).toBeUndefined()
  })
})

describe('huge SBAs: refused in bounded time and memory', () => {
  const signer = privateKeyFromSeed(sha256(utf8('huge-sba')))
  const trusted = [signer.publicKey]

  /**
   * Runs `verify` and returns its verdict, wall time and how much the process grew: the larger of
   * the peak RSS growth and the RSS still held right after (big buffers outlive the call until a
   * major GC, so the second catches what a peak already reached earlier would hide).
   */
  function measure(verify: () => unknown) {
    const rssBefore = process.memoryUsage().rss
    const peakBefore = process.resourceUsage().maxRSS * 1024
    const started = performance.now()
    let verdict = 'accepted'
    try {
      verify()
    } catch (error) {
      expectInvalid(error)
      verdict = `invalid: ${(error as Error).message.slice(0, 100)}`
    }
    const ms = Math.round(performance.now() - started)
    const grown = Math.max(
      process.memoryUsage().rss - rssBefore,
      process.resourceUsage().maxRSS * 1024 - peakBefore
    )
    return { verdict, ms, rssGrowthMiB: Math.round(grown / 2 ** 20) }
  }

  // Signatures whose R is a valid point and S < L get as far as hashing the payload: the most
  // work a signature can cost. Built from a real signature with one bit of S flipped.
  const costlySignature = (payload: Uint8Array) => {
    const envelope = JSON.parse(signEnvelope(payload, [signer])) as {
      signatures: { sig: string }[]
    }
    const sig = Buffer.from(envelope.signatures[0].sig, 'base64')
    sig[40] ^= 1
    return JSON.stringify({ sig: sig.toString('base64') })
  }
  const sbaWith = (payload: Uint8Array, signatures: string[]) =>
    bytesOf(
      `{"payloadType":"${PAYLOAD_TYPE}","payload":"${Buffer.from(payload).toString('base64')}",` +
        `"signatures":[${signatures.join(',')}]}`
    )

  it('an SBA filled to the size cap with signatures is invalid before any is checked', () => {
    const payload = bytesOf('{}')
    const entry = costlySignature(payload)
    const count = Math.floor((MAX_ENVELOPE_BYTES - 200) / (entry.length + 1))
    const sba = sbaWith(payload, Array(count).fill(entry))
    expect(sba.length).toBeLessThanOrEqual(MAX_ENVELOPE_BYTES)
    const result = measure(() => verifyAttestation(sba, trusted, 1))
    recordCounts('huge-sba-signature-flood', {
      signatures: count,
      ms: result.ms,
      rssGrowthMiB: result.rssGrowthMiB
    })
    expect(result.verdict).toBe(
      `invalid: SBA signatures: ${count} entries exceed the limit of ${MAX_SIGNATURES}`
    )
    // Parsing the 32 MiB of JSON is all it costs (about 1 s idle, 6 s on a loaded 2-core machine).
    expect(result.ms).toBeLessThan(30_000)
  })

  // The cost is MAX_SIGNATURES hashes of the payload per trusted key. CI measures it on a 4 MiB
  // payload; the long campaign (`npm run fuzz`, FUZZ_RUNS > 10000) on the largest the size cap
  // allows (about 24 MiB: 12 s and 32 MiB of RSS growth on the 2-core development machine).
  const fullSize = runsFor(1) > 10_000
  it(`${MAX_SIGNATURES} costly signatures over a ${fullSize ? 'near-cap' : '4 MiB'} payload: invalid in bounded time`, () => {
    const entry = costlySignature(bytesOf('{}'))
    const room = MAX_ENVELOPE_BYTES - 200 - MAX_SIGNATURES * (entry.length + 1)
    const length = fullSize ? Math.floor((room * 3) / 4) - 2 : 4 * 2 ** 20
    const payload = bytesOf(`"${'x'.repeat(length)}"`)
    const sba = sbaWith(payload, Array(MAX_SIGNATURES).fill(costlySignature(payload)))
    expect(sba.length).toBeLessThanOrEqual(MAX_ENVELOPE_BYTES)
    const result = measure(() => verifyAttestation(sba, trusted, 1))
    recordCounts('huge-sba-worst-case', {
      payloadBytes: payload.length,
      ms: result.ms,
      rssGrowthMiB: result.rssGrowthMiB
    })
    expect(result.verdict).toMatch(/^invalid: SBA signatures: 0 of 1 trusted key/)
    expect(result.ms).toBeLessThan(60_000)
    expect(result.rssGrowthMiB).toBeLessThan(1024)
  })

  it('a 100 MB statement in an SBA is invalid at once, before it is decoded', () => {
    // The base64 of 100 MB: written in place, 'A' being base64 for zero bits.
    const head = `{"payloadType":"${PAYLOAD_TYPE}","payload":"`
    const tail = '","signatures":[{"sig":""}]}'
    const sba = Buffer.alloc(head.length + Math.ceil((100 * 2 ** 20) / 3) * 4 + tail.length, 'A')
    sba.write(head, 0)
    sba.write(tail, sba.length - tail.length)
    const result = measure(() => verifyAttestation(sba, trusted, 1))
    recordCounts('huge-sba-100mb', { ms: result.ms, rssGrowthMiB: result.rssGrowthMiB })
    expect(result.verdict).toContain(`exceeds the ${MAX_ENVELOPE_BYTES}-byte limit`)
    expect(result.ms).toBeLessThan(1000)
  })
})
