import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from '@jest/globals'
import { treeSha256 } from '../../src/digest/tree.js'
import { utf8 } from '../../src/protocol/encoding.js'
import { signEnvelope } from '../../src/protocol/envelope.js'
import { generateKeyPair, parsePrivateKey } from '../../src/protocol/keys.js'
import { createStatement, parseStatement } from '../../src/protocol/ledger.js'
import { unpackState, writeStateArchive } from '../../src/segments/state-archive.js'
import { stateLocation } from '../../src/segments/states.js'
import {
  createTranscriptStatement,
  parseTranscriptStatement,
  verifyTranscript,
  type Transcript
} from '../../src/segments/transcript.js'

const key = parsePrivateKey(generateKeyPair().privateKeyPem)
const other = parsePrivateKey(generateKeyPair().privateKeyPem)
const digest = 'a'.repeat(64)
const honest: Transcript = {
  attestationDigest: digest,
  segments: 3,
  states: ['1', '2', '3'].map(c => c.repeat(64)),
  stateUri: 'https://example.org/states/state-{i}.tar'
}

interface TranscriptJson {
  predicateType: string
  subject: unknown[]
  predicate: { segments: number; states: string[]; stateUri: string }
}

/** The transcript statement with `edit` applied to its JSON, signed by `key`. */
function signedWith(edit: (statement: TranscriptJson) => void, signer = key): Buffer {
  const statement = JSON.parse(Buffer.from(createTranscriptStatement(honest)).toString('utf8'))
  edit(statement)
  return Buffer.from(signEnvelope(utf8(JSON.stringify(statement)), [signer]))
}

const verify = (bytes: Buffer, segments = 3) =>
  verifyTranscript(bytes, [key.publicKey], 1, { attestationDigest: digest, segments })

describe('training transcript (PROTOCOL.md section 9)', () => {
  it('round-trips, and verifies under the SBA keys', () => {
    const statement = createTranscriptStatement(honest)
    expect(parseTranscriptStatement(statement)).toEqual(honest)
    const parsed = JSON.parse(Buffer.from(statement).toString('utf8'))
    expect(parsed.predicateType).toBe('https://openclaw.dev/training-transcript/v1')
    expect(parsed.subject).toEqual([{ name: 'attestation', digest: { sha256: digest } }])
    const verified = verify(signedWith(() => {}))
    expect(verified.states).toEqual(honest.states)
    expect(verified.keyIds).toEqual([key.publicKey.keyId])
  })

  it.each<[string, (s: TranscriptJson) => void, string]>([
    [
      'another predicate type',
      s => (s.predicateType = 'x'),
      "predicateType: expected 'https://openclaw.dev/training-transcript/v1'"
    ],
    [
      'a state too short',
      s => (s.predicate.states[1] = 'ab'),
      'predicate.states[1]: expected 64 lowercase hex'
    ],
    ['upper-case hex', s => (s.predicate.states[0] = 'A'.repeat(64)), 'predicate.states[0]'],
    [
      'fewer states than segments',
      s => s.predicate.states.pop(),
      'expected 3 state roots (predicate.segments), got 2'
    ],
    [
      'one segment',
      s => (s.predicate.segments = 1),
      'predicate.segments: expected an integer from 2 to 100000'
    ],
    [
      'no {i} in the template',
      s => (s.predicate.stateUri = 'https://x/state.tar'),
      'predicate.stateUri'
    ],
    [
      'no attestation subject',
      s => (s.subject = [{ name: 'model', digest: { sha256: digest } }]),
      "exactly one subject named 'attestation'"
    ]
  ])('rejects %s', (_, edit, message) => {
    expect(() => verify(signedWith(edit))).toThrow(message)
  })

  it('rejects duplicate keys anywhere', () => {
    const text = Buffer.from(createTranscriptStatement(honest))
      .toString('utf8')
      .replace('"segments": 3,', '"segments": 3, "segments": 3,')
    expect(() => parseTranscriptStatement(utf8(text))).toThrow(/duplicate/i)
  })

  it('is invalid for another SBA, a wrong count or an untrusted signer', () => {
    const bytes = signedWith(() => {})
    expect(() =>
      verifyTranscript(bytes, [key.publicKey], 1, {
        attestationDigest: 'b'.repeat(64),
        segments: 3
      })
    ).toThrow('the transcript belongs to another SBA')
    expect(() => verify(bytes, 4)).toThrow("3 states, but the ledger's build.segments is 4")
    expect(() => verify(signedWith(() => {}, other))).toThrow(/^transcript signatures: 0 of 1/)
  })

  it('locates states: URLs, relative to a transcript URL or file, file:// URLs', () => {
    expect(stateLocation('https://h/s/{i}.tar', 3, '/tmp/t.json')).toBe('https://h/s/3.tar')
    expect(stateLocation('states/state-{i}.tar', 2, 'https://h/r/transcript.json')).toBe(
      'https://h/r/states/state-2.tar'
    )
    expect(stateLocation('states/state-{i}.tar', 2, '/pub/transcript.json')).toBe(
      '/pub/states/state-2.tar'
    )
    expect(stateLocation('file:///srv/s-{i}.tar', 10, '/pub/t.json')).toBe('/srv/s-10.tar')
    // A downloaded transcript cannot point the verifier at its own files.
    expect(() => stateLocation('file:///etc/s-{i}.tar', 1, 'https://h/t.json')).toThrow(
      'names a local file, but the transcript came from https://h'
    )
  })
})

describe('ledger build.segments', () => {
  const ledger = (build: Record<string, unknown>) =>
    createStatement({
      sourceUri: 'git+https://github.com/acme/tiny-model',
      gitCommit: '4b825dc642cb6eb9a060e54bf8d69288fbee4904',
      dependencies: [],
      image: { uri: 'oci://ghcr.io/acme/trainer', sha256: 'c'.repeat(64) },
      build: { command: ['sh', 'train.sh'], sourceDateEpoch: 1, ...build }
    })
  it('accepts 2 to 100000 and rejects anything else', () => {
    expect(parseStatement(ledger({ segments: 8 })).build.segments).toBe(8)
    expect(parseStatement(ledger({})).build.segments).toBeUndefined()
    for (const bad of [1, 0, 100001, 2.5, '8', null])
      expect(() => ledger({ segments: bad })).toThrow('predicate.build.segments')
  })
  it.each(['VERIFY_MODEL_SEGMENT', 'VERIFY_MODEL_SEGMENTS'])('reserves %s', name => {
    expect(() => ledger({ segments: 2, env: { [name]: '1' } })).toThrow(
      `predicate.build.env.${name}`
    )
  })
})

describe('state archives', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'state-archive-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('are deterministic tars that unpack (section 4 rules) to the same root', async () => {
    const state = path.join(dir, 'state')
    mkdirSync(path.join(state, 'optimizer/deep/' + 'x'.repeat(120)), { recursive: true })
    writeFileSync(path.join(state, 'weights.bin'), Buffer.alloc(100_000, 7))
    writeFileSync(path.join(state, 'optimizer/deep/' + 'x'.repeat(120) + '/m.bin'), 'moment')
    writeFileSync(path.join(state, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 })
    const first = await writeStateArchive(state, path.join(dir, 'a.tar'))
    const second = await writeStateArchive(state, path.join(dir, 'b.tar'))
    expect(
      readFileSync(path.join(dir, 'a.tar')).equals(readFileSync(path.join(dir, 'b.tar')))
    ).toBe(true)
    expect(first.root).toBe((await treeSha256(state)).root)
    // GNU tar reads it too (it is a plain ustar/pax archive).
    expect(execFileSync('tar', ['-tf', path.join(dir, 'a.tar')], { encoding: 'utf8' })).toContain(
      'weights.bin'
    )
    const unpacked = await unpackState(path.join(dir, 'a.tar'), path.join(dir, 'u'), {
      label: 'state 1',
      expectedRoot: first.root
    })
    expect(unpacked.root).toBe(first.root)
    await expect(
      unpackState(path.join(dir, 'a.tar'), path.join(dir, 'v'), {
        label: 'state 1',
        expectedRoot: second.root.replace(/^./, c => (c === '0' ? '1' : '0'))
      })
    ).rejects.toMatchObject({
      verdict: 'mismatch',
      message: expect.stringContaining('state 1 unpacks to root')
    })
    expect(second.root).toBe(first.root)
  })
})
