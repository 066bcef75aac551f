import { describe, expect, it } from '@jest/globals'
import { createHash, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { acceptRebuilds, type RebuildCandidate } from '../../src/attest/accept.js'
import { createVsa, parseVsa, signVsa, type RebuildFacts } from '../../src/attest/vsa.js'
import { generateKeyPair, parsePrivateKey, parsePublicKey } from '../../src/protocol/keys.js'
import { vectorsDir } from '../helpers/paths.js'

interface VsaCase {
  name: string
  envelope: unknown
  counts: boolean
  why: string
}
const vectors = JSON.parse(readFileSync(path.join(vectorsDir, 'vsa.json'), 'utf8')) as {
  rebuilderKeys: string[]
  modelRoot: string
  attestationDigest: string
  cases: VsaCase[]
}
const trusted = vectors.rebuilderKeys.map(hex => parsePublicKey(hex))
const subject = { modelRoot: vectors.modelRoot, attestationDigest: vectors.attestationDigest }
const candidate = (c: VsaCase, source = c.name): RebuildCandidate => ({
  source,
  attestation: { bytes: Buffer.from(JSON.stringify(c.envelope)) }
})
const byName = (name: string) => {
  const found = vectors.cases.find(c => c.name === name)
  if (!found) throw new Error(`no case ${name} in vsa.json`)
  return found
}

describe('vsa.json', () => {
  it('has counting and refused cases', () => {
    expect(vectors.cases.filter(c => c.counts)).toHaveLength(2)
    expect(vectors.cases.filter(c => !c.counts).length).toBeGreaterThanOrEqual(6)
  })

  it.each(vectors.cases.map(c => [c.name, c] as const))('%s', (_, c) => {
    const { verdicts, countedKeys, failure } = acceptRebuilds([candidate(c)], subject, {
      trustedKeys: trusted,
      threshold: 1
    })
    expect(verdicts).toHaveLength(1)
    const [verdict] = verdicts
    expect(verdict.counted).toBe(c.counts)
    expect(verdict.source).toBe(c.name)
    if (c.counts) {
      expect(verdict.why).toBe('')
      expect(countedKeys).toHaveLength(1)
      expect(verdict.keyIds).toEqual([countedKeys[0].keyId])
      expect(failure).toBeUndefined()
    } else {
      expect(verdict.why.split(':')[0]).toBe(c.why)
      expect(verdict.why.length).toBeGreaterThan(c.why.length + 10)
      expect(failure).toMatchObject({ verdict: 'invalid' })
      expect(failure!.message).toContain(`#1 ${c.name}: ${c.why}`)
      // Only a signature from a trusted key lets the rules be read at all.
      expect(verdict.keyIds).toHaveLength(c.why === 'signature' ? 0 : 1)
    }
  })

  it('2 of 2 distinct rebuilders → accepted with both keys', () => {
    const result = acceptRebuilds(
      [candidate(byName('counts (rebuilder 1)')), candidate(byName('counts (rebuilder 2)'))],
      subject,
      { trustedKeys: trusted, threshold: 2 }
    )
    expect(result.failure).toBeUndefined()
    expect(result.verdicts.map(v => v.counted)).toEqual([true, true])
    expect(result.countedKeys.map(k => k.keyId).sort()).toEqual(trusted.map(k => k.keyId).sort())
  })

  it('one key twice counts once: 2 of 2 is refused, the second is a duplicate', () => {
    const once = byName('counts (rebuilder 1)')
    const result = acceptRebuilds([candidate(once, 'a.json'), candidate(once, 'b.json')], subject, {
      trustedKeys: trusted,
      threshold: 2
    })
    expect(result.verdicts.map(v => v.counted)).toEqual([true, false])
    expect(result.verdicts[1].why).toMatch(
      /^duplicate: its key\(s\) [0-9a-f]{12} already counted \(attestation 1\)/
    )
    expect(result.countedKeys).toHaveLength(1)
    expect(result.failure).toMatchObject({ verdict: 'invalid' })
    expect(result.failure!.message).toMatch(
      /^rebuild attestations: 1 distinct trusted rebuilder key\(s\) with a counting attestation, threshold is 2; refused #2 b\.json: duplicate$/
    )
  })

  it('every refused one is named; counting ones still reach the threshold', () => {
    const result = acceptRebuilds([...vectors.cases.map(c => candidate(c))], subject, {
      trustedKeys: trusted,
      threshold: 2
    })
    expect(result.failure).toBeUndefined()
    expect(result.verdicts.filter(v => v.counted).map(v => v.source)).toEqual([
      'counts (rebuilder 1)',
      'counts (rebuilder 2)'
    ])
  })

  it('an unreachable attestation below the threshold → unverifiable, not invalid', () => {
    const result = acceptRebuilds(
      [
        candidate(byName('counts (rebuilder 1)')),
        { source: 'https://r2.example/vsa.json', attestation: { error: 'HTTP 503' } }
      ],
      subject,
      { trustedKeys: trusted, threshold: 2 }
    )
    expect(result.verdicts[1]).toMatchObject({ counted: false, why: 'fetch: HTTP 503', keyIds: [] })
    expect(result.failure).toMatchObject({ verdict: 'unverifiable' })
    expect(result.failure!.message).toContain('could not fetch #2 https://r2.example/vsa.json')
  })

  it('malformed envelopes and statements are refused, never thrown', () => {
    const result = acceptRebuilds(
      [
        { source: 'junk', attestation: { bytes: Buffer.from('{"payloadType": 1}') } },
        { source: 'big', attestation: { bytes: Buffer.alloc(2 * 1024 * 1024, 0x20) } }
      ],
      subject,
      { trustedKeys: trusted, threshold: 1 }
    )
    expect(result.verdicts.map(v => v.why.split(':')[0])).toEqual(['envelope', 'envelope'])
  })

  it('with a log required: a missing, foreign or forged proof does not count; a valid one does', () => {
    const ok = byName('counts (rebuilder 1)')
    const envelope = ok.envelope as { payloadType: string; payload: string }
    const payload = Buffer.from(envelope.payload, 'base64')
    const digest = createHash('sha256')
      .update(
        Buffer.concat([
          Buffer.from(
            `DSSEv1 ${envelope.payloadType.length} ${envelope.payloadType} ${payload.length} `
          ),
          payload
        ])
      )
      .digest('hex')
    const log = makeLog('example.org/rebuild-log')
    const proofFor = (attestation: string) =>
      Buffer.from(log.proof(attestation, [vectors.rebuilderKeys[0]]))
    const forged = proofFor(digest)
      .toString()
      .replace(/^— .*$/m, line => line.slice(0, -8) + 'AAAAAAA=')
    const result = acceptRebuilds(
      [
        candidate(ok, 'no proof'),
        {
          ...candidate(ok, 'foreign proof'),
          logProof: { bytes: proofFor(vectors.attestationDigest) }
        },
        { ...candidate(ok, 'forged proof'), logProof: { bytes: Buffer.from(forged) } },
        { ...candidate(ok, 'good proof'), logProof: { bytes: proofFor(digest) } }
      ],
      subject,
      {
        trustedKeys: trusted,
        threshold: 1,
        log: { logKey: log.verifierKey, witnessKeys: [], witnessThreshold: 0 }
      }
    )
    expect(result.verdicts.map(v => [v.counted, v.why.split(':')[0]])).toEqual([
      [false, 'logProof'],
      [false, 'logProof'],
      [false, 'logProof'],
      [true, '']
    ])
    expect(result.verdicts[1].why).toContain(`it logs attestation ${vectors.attestationDigest}`)
    expect(result.verdicts[2].why).toContain('log signature')
    expect(result.verdicts[3]).toMatchObject({ logIndex: 0, attestationDigest: digest })
    expect(result.failure).toBeUndefined()
  })
})

/**
 * A one-entry C2SP log written by hand with node:crypto (independent of src/tlog): the entry of
 * PROTOCOL.md section 7, its checkpoint signed as a signed-note, and the tlog-proof text.
 */
function makeLog(origin: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(12)
  const keyId = createHash('sha256')
    .update(Buffer.concat([Buffer.from(`${origin}\n`), Buffer.of(1), pub]))
    .digest()
    .subarray(0, 4)
  return {
    verifierKey: `${origin}+${keyId.toString('hex')}+${Buffer.concat([Buffer.of(1), pub]).toString('base64')}`,
    proof(attestationDigest: string, keys: string[]): string {
      const entry = Buffer.from(
        [
          'openclaw.dev/verify-model/log-entry/v1',
          `attestation ${attestationDigest}`,
          ...keys.sort().map(k => `key ${k}`)
        ].join('\n') + '\n'
      )
      const root = createHash('sha256')
        .update(Buffer.concat([Buffer.of(0), entry]))
        .digest()
      const body = `${origin}\n1\n${root.toString('base64')}\n`
      const sig = sign(null, Buffer.from(body), privateKey)
      const note = `${body}\n— ${origin} ${Buffer.concat([keyId, sig]).toString('base64')}\n`
      return `c2sp.org/tlog-proof@v1\nextra ${entry.toString('base64')}\nindex 0\n\n${note}`
    }
  }
}

describe('createVsa / signVsa', () => {
  const facts: RebuildFacts = {
    modelRoot: vectors.modelRoot,
    attestationDigest: vectors.attestationDigest,
    verifierId: 'https://github.com/acme/rebuilder/.github/workflows/rebuild.yml',
    timeVerified: new Date('2026-12-01T12:00:00.789Z')
  }

  it('writes exactly the fields of section 8, the time in UTC whole seconds', () => {
    const statement = JSON.parse(Buffer.from(createVsa(facts)).toString('utf8'))
    const vector = JSON.parse(
      Buffer.from(
        (byName('counts (rebuilder 1)').envelope as { payload: string }).payload,
        'base64'
      ).toString()
    )
    expect(statement).toEqual(vector)
  })

  it('uses the fetched URLs when given', () => {
    const statement = JSON.parse(
      Buffer.from(
        createVsa({
          ...facts,
          resourceUri: 'https://models.example.org/m.safetensors',
          sbaUri: 'https://models.example.org/m.sba.json'
        })
      ).toString()
    )
    expect(statement.predicate.resourceUri).toBe('https://models.example.org/m.safetensors')
    expect(statement.predicate.inputAttestations[0].uri).toBe(
      'https://models.example.org/m.sba.json'
    )
  })

  it('refuses what is not a URI or not a digest', () => {
    expect(() => createVsa({ ...facts, verifierId: 'not a uri' })).toThrow(
      /verifier\.id: expected a URI/
    )
    expect(() => createVsa({ ...facts, modelRoot: 'ABC' })).toThrow(
      /modelRoot: expected 64 lowercase hex/
    )
  })

  it('signs a DSSE envelope that node:crypto verifies over the PAE and acceptance counts', () => {
    const pair = generateKeyPair()
    const key = parsePrivateKey(pair.privateKeyPem)
    const envelope = JSON.parse(signVsa(facts, key))
    const payload = Buffer.from(envelope.payload, 'base64')
    const type = 'application/vnd.in-toto+json'
    const pae = Buffer.concat([
      Buffer.from(`DSSEv1 ${type.length} ${type} ${payload.length} `),
      payload
    ])
    expect(envelope.payloadType).toBe(type)
    expect(envelope.signatures).toHaveLength(1)
    expect(envelope.signatures[0].keyid).toBe(pair.keyId)
    expect(
      verify(
        null,
        pae,
        createPublicKey(pair.publicKeyPem),
        Buffer.from(envelope.signatures[0].sig, 'base64')
      )
    ).toBe(true)
    const accepted = acceptRebuilds(
      [{ source: 'new', attestation: { bytes: Buffer.from(JSON.stringify(envelope)) } }],
      subject,
      { trustedKeys: [parsePublicKey(pair.publicKeyPem)], threshold: 1 }
    )
    expect(accepted.verdicts[0]).toMatchObject({
      counted: true,
      why: '',
      verifierId: facts.verifierId,
      timeVerified: '2026-12-01T12:00:00Z'
    })
  })
})

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- mutated freely below
type Statement = any

describe('parseVsa', () => {
  const base = () =>
    JSON.parse(
      Buffer.from(
        createVsa({
          modelRoot: vectors.modelRoot,
          attestationDigest: vectors.attestationDigest,
          verifierId: 'https://r.example/',
          timeVerified: new Date(0)
        })
      ).toString()
    )
  const parse = (value: unknown) => parseVsa(Buffer.from(JSON.stringify(value)))

  it.each([
    ['a duplicate key', null, /duplicate key/],
    ['no subject', (s: Statement) => (s.subject = []), /subject: expected at least one subject/],
    [
      'a subject digest in upper case',
      (s: Statement) => (s.subject[0].digest.treeSha256 = 'A'.repeat(64)),
      /subject\[0\]\.digest\.treeSha256: expected 64 lowercase hex/
    ],
    [
      'no verifier id',
      (s: Statement) => delete s.predicate.verifier.id,
      /predicate\.verifier\.id: missing/
    ],
    [
      'a bad time',
      (s: Statement) => (s.predicate.timeVerified = '2026-13-01 12:00'),
      /predicate\.timeVerified: expected an RFC 3339 date-time/
    ],
    [
      'levels that are not strings',
      (s: Statement) => (s.predicate.verifiedLevels = [1]),
      /predicate\.verifiedLevels\[0\]: expected a string/
    ],
    [
      'another _type',
      (s: Statement) => (s._type = 'https://in-toto.io/Statement/v0.1'),
      /_type: expected/
    ],
    [
      'no input attestations',
      (s: Statement) => delete s.predicate.inputAttestations,
      /predicate\.inputAttestations: missing/
    ]
  ])('refuses %s', (_, mutate, message) => {
    if (mutate === null) {
      const text = JSON.stringify(base()).replace(
        '"predicateType"',
        '"predicateType":"x","predicateType"'
      )
      expect(() => parseVsa(Buffer.from(text))).toThrow(message)
      return
    }
    const statement = base()
    mutate(statement)
    expect(() => parse(statement)).toThrow(
      expect.objectContaining({ verdict: 'invalid', message: expect.stringMatching(message) })
    )
  })
})
