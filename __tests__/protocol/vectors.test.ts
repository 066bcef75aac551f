import { describe, expect, it } from '@jest/globals'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { verifyAttestation } from '../../src/protocol/attestation.js'
import { computeCapability } from '../../src/protocol/capability.js'
import { decodeBase64Strict, toHex } from '../../src/protocol/encoding.js'
import { pae } from '../../src/protocol/envelope.js'
import { parsePrivateKey, parsePublicKey } from '../../src/protocol/keys.js'
import { repoRoot, vectorsDir } from '../helpers/paths.js'

interface KeyVector {
  index: number
  privatePkcs8Pem: string
  publicPem: string
  publicDerBase64: string
  publicRawHex: string
  publicRawBase64: string
  keyid: string
}
interface SbaCase {
  name: string
  envelope: unknown
  trustedKeys: number[]
  threshold: number
  valid: boolean
  why: string
  attestationDigest?: string
  modelRoot?: string
  capability?: string
}

const load = <T>(name: string): T =>
  JSON.parse(readFileSync(path.join(vectorsDir, name), 'utf8')) as T

const keyVectors = load<{ keys: KeyVector[] }>('keys.json').keys
const paeCases = load<{
  cases: { payloadType: string; payloadBase64: string; paeBase64: string }[]
}>('pae.json').cases
const sbaCases = load<{ cases: SbaCase[] }>('sba.json').cases

// Why each invalid case must fail: the stage and JSON path the message names.
const expectedFailure: Record<string, string> = {
  'wrong-key': 'SBA signatures: 0 of 1 trusted key(s) verified',
  'threshold-not-met': 'SBA signatures: 1 of 3 trusted key(s) verified, threshold is 2',
  'duplicate-signature': 'SBA signatures: 1 of 2 trusted key(s) verified, threshold is 2',
  'tampered-payload': 'SBA signatures: 0 of 1',
  'tampered-signature': 'SBA signatures: 0 of 1',
  'malleable-s': 'SBA signatures: 0 of 1',
  'wrong-payload-type': "SBA payloadType: expected 'application/vnd.in-toto+json'",
  'bad-base64': 'SBA payload: not valid base64',
  'duplicate-json-key': "statement: duplicate key '_type'",
  'wrong-predicate-type': "predicateType: expected 'https://openclaw.dev/build-ledger/v1'",
  'output-traversal': "predicate.build.outputs[0]: '..' segment not allowed",
  'absolute-workdir': 'predicate.build.workdir: absolute path not allowed',
  'shell-string-command': 'predicate.build.command: expected an array, got a string',
  'unknown-build-field': 'predicate.build.privileged: unknown field inside build',
  'short-commit': 'predicate.source.digest.gitCommit: expected the full commit id',
  'uppercase-image-digest': 'predicate.environment.digest.sha256: expected 64 lowercase hex',
  'bad-env-name': 'predicate.build.env["X -v /:/host"]: invalid variable name',
  'image-uri-with-tag': 'predicate.environment.uri: a tag is not allowed',
  'sde-reserved-env':
    'predicate.build.env.SOURCE_DATE_EPOCH: SOURCE_DATE_EPOCH is set by the verifier'
}

const trustedKey = (index: number) => {
  const vector = keyVectors.find(k => k.index === index)
  if (vector === undefined) throw new Error(`no key ${index} in keys.json`)
  return parsePublicKey(vector.publicPem)
}

describe('keys.json', () => {
  it.each(keyVectors.map(k => [k.index, k] as const))(
    'key %i: every form gives one key',
    (_, k) => {
      const forms = [k.publicPem, k.publicDerBase64, k.publicRawHex, k.publicRawBase64]
      for (const form of forms) {
        const key = parsePublicKey(form)
        expect(toHex(key.raw)).toBe(k.publicRawHex)
        expect(key.keyId).toBe(k.keyid)
        expect(Buffer.from(key.spkiDer).toString('base64')).toBe(k.publicDerBase64)
      }
      const privateKey = parsePrivateKey(k.privatePkcs8Pem)
      expect(toHex(privateKey.publicKey.raw)).toBe(k.publicRawHex)
      expect(privateKey.publicKey.keyId).toBe(k.keyid)
    }
  )
})

describe('pae.json', () => {
  it.each(paeCases.map(c => [c.payloadType, c] as const))('PAE for %s', (_, c) => {
    const payload = decodeBase64Strict(c.payloadBase64, 'payload')
    expect(Buffer.from(pae(c.payloadType, payload)).toString('base64')).toBe(c.paeBase64)
  })
})

describe('sba.json', () => {
  it('has valid and invalid cases', () => {
    expect(sbaCases.filter(c => c.valid).length).toBeGreaterThan(0)
    expect(sbaCases.filter(c => !c.valid).length).toBeGreaterThan(0)
  })

  it.each(sbaCases.map(c => [c.name, c] as const))('%s', (_, c) => {
    const sba = Buffer.from(JSON.stringify(c.envelope))
    const trusted = c.trustedKeys.map(trustedKey)
    if (!c.valid) {
      expect(Object.keys(expectedFailure)).toContain(c.name)
      expect(() => verifyAttestation(sba, trusted, c.threshold)).toThrow(
        expect.objectContaining({
          name: 'VerifyError',
          verdict: 'invalid',
          message: expect.stringContaining(expectedFailure[c.name])
        })
      )
      return
    }
    const result = verifyAttestation(sba, trusted, c.threshold)
    expect(result.attestationDigest).toBe(c.attestationDigest)
    expect(
      computeCapability(
        result.verifiedKeys.map(k => k.raw),
        result.attestationDigest,
        c.modelRoot as string
      )
    ).toBe(c.capability)
    expect(result.ledger.source.gitCommit).toBe('4b825dc642cb6eb9a060e54bf8d69288fbee4904')
  })
})

describe('vector copies', () => {
  const shared = path.join(repoRoot, '../shared/vectors')

  it('equal /work/shared/vectors byte for byte (required under CI)', () => {
    if (process.env.CI === 'true') expect(existsSync(shared)).toBe(true)
    if (!existsSync(shared)) return
    const names = readdirSync(shared).sort()
    expect(readdirSync(vectorsDir).sort()).toEqual(names)
    for (const name of names) {
      expect(readFileSync(path.join(vectorsDir, name))).toEqual(
        readFileSync(path.join(shared, name))
      )
    }
  })

  it('include isa-profiles.json, byte for byte', () => {
    const copy = readFileSync(path.join(vectorsDir, 'isa-profiles.json'))
    if (process.env.CI === 'true' || existsSync(shared))
      expect(copy).toEqual(readFileSync(path.join(shared, 'isa-profiles.json')))
  })

  it('include vsa.json, byte for byte', () => {
    const copy = readFileSync(path.join(vectorsDir, 'vsa.json'))
    if (process.env.CI === 'true' || existsSync(shared))
      expect(copy).toEqual(readFileSync(path.join(shared, 'vsa.json')))
  })
})
