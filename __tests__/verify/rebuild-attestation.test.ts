import { describe, expect, it } from '@jest/globals'
import { mkdtempSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { writeRebuildAttestation } from '../../src/action/rebuild-attestations.js'
import type { ActionInputs } from '../../src/action/inputs.js'
import { generateKeyPair, parsePrivateKey } from '../../src/protocol/keys.js'
import { rebuildAttestationFor } from '../../src/verify/rebuild-attestation.js'
import type { Report } from '../../src/verify/report.js'

const key = parsePrivateKey(generateKeyPair().privateKeyPem)
const root = 'a'.repeat(64)
const digest = 'b'.repeat(64)
const tree = { root, manifest: [] }
const now = () => new Date('2026-12-01T21:30:05.250Z')
const report = (overrides: Partial<Report>): Report => ({
  schemaVersion: 1,
  mode: 'verify',
  result: 'verified',
  reason: '',
  checks: [],
  attestationDigest: digest,
  reproduced: tree,
  downloaded: tree,
  ...overrides
})
const statementOf = (envelope: string) =>
  JSON.parse(Buffer.from(JSON.parse(envelope).payload, 'base64').toString('utf8'))
const options = { key, verifierId: 'https://r.example/', now }

describe('rebuildAttestationFor', () => {
  it.each([
    ['mismatch', report({ result: 'mismatch' })],
    ['unverifiable', report({ result: 'unverifiable' })],
    ['invalid', report({ result: 'invalid', reproduced: undefined })],
    ['check (verified without a rebuild)', report({ mode: 'check', reproduced: undefined })],
    ['attested (verified without a rebuild)', report({ mode: 'attested', reproduced: undefined })]
  ])('signs nothing for %s', (_, failing) => {
    expect(rebuildAttestationFor(failing, options)).toBeUndefined()
  })

  it('verify: the download root; reproduce: the rebuilt root, never the model URL', () => {
    const verified = statementOf(
      rebuildAttestationFor(report({}), { ...options, resourceUri: 'https://m.example/w.bin' })!
    )
    expect(verified.subject[0].digest.treeSha256).toBe(root)
    expect(verified.predicate.resourceUri).toBe('https://m.example/w.bin')
    expect(verified.predicate.timeVerified).toBe('2026-12-01T21:30:05Z')
    const reproduced = statementOf(
      rebuildAttestationFor(
        report({ mode: 'reproduce', result: 'reproduced', downloaded: undefined }),
        {
          ...options,
          resourceUri: 'https://m.example/w.bin'
        }
      )!
    )
    expect(reproduced.predicate.resourceUri).toBe(`urn:openclaw:model:treeSha256:${root}`)
  })
})

describe('writeRebuildAttestation (the action)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vsa-write-'))
  const inputs = (overrides: Partial<ActionInputs>) =>
    ({
      attestation: { kind: 'url', url: 'https://m.example/m.sba.json' },
      modelUrls: [],
      workingDirectory: dir,
      attest: { key, verifierId: 'https://r.example/' },
      ...overrides
    }) as ActionInputs

  it('one model-url is the resourceUri, the SBA URL the input attestation uri', async () => {
    const passed = report({})
    await writeRebuildAttestation(
      passed,
      inputs({ modelUrls: [{ name: 'w.bin', url: 'https://m.example/w.bin' }] }),
      now,
      'one.json'
    )
    expect(passed.rebuildAttestation).toBe(path.join(dir, 'one.json'))
    const statement = statementOf(readFileSync(passed.rebuildAttestation!, 'utf8'))
    expect(statement.predicate.resourceUri).toBe('https://m.example/w.bin')
    expect(statement.predicate.inputAttestations[0]).toEqual({
      uri: 'https://m.example/m.sba.json',
      digest: { sha256: digest }
    })
  })

  it('several model-urls make a tree no single URL names: the urn', async () => {
    const passed = report({})
    await writeRebuildAttestation(
      passed,
      inputs({
        attestation: { kind: 'path', path: '/x/m.sba.json' },
        modelUrls: [
          { name: 'a', url: 'https://m.example/a' },
          { name: 'b', url: 'https://m.example/b' }
        ]
      }),
      now,
      'two.json'
    )
    const statement = statementOf(readFileSync(passed.rebuildAttestation!, 'utf8'))
    expect(statement.predicate.resourceUri).toBe(`urn:openclaw:model:treeSha256:${root}`)
    expect(statement.predicate.inputAttestations[0].uri).toBe('urn:openclaw:sba')
  })

  it('without attest-key, or on a failure, writes nothing', async () => {
    const failed = report({ result: 'mismatch' })
    await writeRebuildAttestation(failed, inputs({}), now, 'three.json')
    const unasked = report({})
    await writeRebuildAttestation(unasked, inputs({ attest: undefined }), now, 'four.json')
    expect(failed.rebuildAttestation).toBeUndefined()
    expect(unasked.rebuildAttestation).toBeUndefined()
  })
})
