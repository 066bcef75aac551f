import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { leafHash, rootOfLeafHashes } from '../../src/digest/merkle.js'
import { parseCheckpoint } from '../../src/tlog/checkpoint.js'
import { formatEntry, parseEntry } from '../../src/tlog/entry.js'
import {
  COSIGNATURE_V1,
  ED25519,
  formatVerifierKey,
  parseNote,
  parseVerifierKey,
  verifierKey
} from '../../src/tlog/note.js'
import { formatProof, parseProof } from '../../src/tlog/proof.js'
import { inclusionProof, leafNodeReader } from '../../src/tlog/rfc6962.js'
import { verifyCheckpointNote, verifyLogProof, type LogPolicy } from '../../src/tlog/verify.js'
import { vectorsDir } from '../helpers/paths.js'

interface TlogVectors {
  log: { origin: string; publicKey: string; vkey: string }
  witnesses: { name: string; publicKey: string; vkey: string }[]
  publisherKeys: string[]
  entries: { entry: string; leafHash: string }[]
  root: string
  checkpoint: string
  proofs: {
    name: string
    proof: string
    attestation: string
    valid: boolean
    witnessThreshold: number
    why: string
  }[]
}

const vectors = JSON.parse(readFileSync(path.join(vectorsDir, 'tlog.json'), 'utf8')) as TlogVectors
const raw = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'))
const policy = (witnessThreshold: number): LogPolicy => ({
  logKey: vectors.log.vkey,
  witnessKeys: vectors.witnesses.map(w => w.vkey),
  witnessThreshold
})
/** The SBA a proof is checked for: its digest and the keys its logged entry lists. */
const subject = (attestationDigest: string) => {
  const logged = vectors.entries
    .map(e => parseEntry(Buffer.from(e.entry, 'utf8')))
    .find(e => e.attestationDigest === attestationDigest)
  return { attestationDigest, verifiedKeys: (logged?.keys ?? vectors.publisherKeys).map(raw) }
}

// What each failing vector's message must name: the stage that refused it.
const stage: Record<string, RegExp> = {
  'witness threshold': /^log proof checkpoint: witness threshold: 2 of 3 configured/,
  inclusion: /^log proof inclusion: /,
  entry: /^log proof entry: it logs attestation /,
  'log signature': /^log proof checkpoint: log signature: /,
  format: /^log proof format: the first line must be 'c2sp.org\/tlog-proof@v1'/
}

describe('tlog.json: keys', () => {
  it('formats the log and witness verifier keys', () => {
    const log = verifierKey(vectors.log.origin, ED25519, raw(vectors.log.publicKey))
    expect(formatVerifierKey(log)).toBe(vectors.log.vkey)
    for (const w of vectors.witnesses) {
      const key = verifierKey(w.name, COSIGNATURE_V1, raw(w.publicKey))
      expect(formatVerifierKey(key)).toBe(w.vkey)
      expect(parseVerifierKey(w.vkey, COSIGNATURE_V1, 'witness').publicKey).toEqual(
        raw(w.publicKey)
      )
    }
  })

  it('refuses a verifier key of the wrong type or with a wrong id', () => {
    expect(() => parseVerifierKey(vectors.witnesses[0].vkey, ED25519, 'log key')).toThrow(
      /log key: signature type 0x04 is not the one expected/
    )
    const wrongId = vectors.log.vkey.replace('+dea5a7bb+', '+dea5a7bc+')
    expect(() => parseVerifierKey(wrongId, ED25519, 'log key')).toThrow(
      /key id dea5a7bc does not match the key \(its id is dea5a7bb\)/
    )
  })
})

describe('tlog.json: entries and tree', () => {
  it('formats every entry and its leaf hash', () => {
    for (const { entry, leafHash: expected } of vectors.entries) {
      const parsed = parseEntry(Buffer.from(entry, 'utf8'))
      const formatted = formatEntry(parsed.attestationDigest, parsed.keys.map(raw).reverse())
      expect(Buffer.from(formatted).toString('utf8')).toBe(entry)
      expect(leafHash(formatted)).toBe(expected)
    }
  })

  it('computes the root and every inclusion proof the vectors carry', async () => {
    const leaves = vectors.entries.map(e => e.leafHash)
    expect(rootOfLeafHashes(leaves)).toBe(vectors.root)
    const node = leafNodeReader(leaves)
    for (const vector of vectors.proofs.filter(p => p.valid)) {
      const parsed = parseProof(vector.proof)
      expect(await inclusionProof(parsed.index, leaves.length, node)).toEqual(parsed.hashes)
      expect(formatProof(parsed)).toBe(vector.proof)
    }
  })

  it('verifies the checkpoint: log signature and two cosignatures', () => {
    const { checkpoint, witnesses } = verifyCheckpointNote(vectors.checkpoint, policy(2))
    expect(checkpoint).toEqual({
      origin: vectors.log.origin,
      treeSize: vectors.entries.length,
      root: vectors.root,
      extensions: []
    })
    expect(witnesses).toEqual(['witness.example/one', 'witness.example/two'])
    expect(parseCheckpoint(parseNote(vectors.checkpoint).text).treeSize).toBe(21)
  })
})

describe('tlog.json: proofs', () => {
  for (const vector of vectors.proofs) {
    it(`${vector.valid ? 'accepts' : 'refuses'}: ${vector.name}`, () => {
      const run = () =>
        verifyLogProof(vector.proof, policy(vector.witnessThreshold), subject(vector.attestation))
      if (vector.valid) {
        const result = run()
        expect(result.origin).toBe(vectors.log.origin)
        expect(result.treeSize).toBe(21)
        expect(result.root).toBe(vectors.root)
        expect(result.witnesses.length).toBeGreaterThanOrEqual(vector.witnessThreshold)
      } else {
        expect(run).toThrow(stage[vector.why])
      }
    })
  }
})

describe('proofs from the independent writer, mutated', () => {
  const valid = vectors.proofs.find(p => p.name === 'valid index 7')!
  const check = (proof: string, threshold = 1) =>
    verifyLogProof(proof, policy(threshold), subject(valid.attestation))
  const lines = valid.proof.split('\n')
  const withLine = (i: number, line: string) => lines.map((l, j) => (j === i ? line : l)).join('\n')
  const hashLine = lines.findIndex(l => /^[A-Za-z0-9+/]{43}=$/.test(l))
  const bodyStart = lines.indexOf('', hashLine) + 1
  const flip = (b64: string) => {
    const bytes = Buffer.from(b64, 'base64')
    bytes[5] ^= 1
    return bytes.toString('base64')
  }

  it('accepts the unmutated proof', () => {
    expect(check(valid.proof).index).toBe(7)
  })

  const mutations: [string, () => string, RegExp, number?][] = [
    [
      'another index',
      () => valid.proof.replace('\nindex 7\n', '\nindex 6\n'),
      /^log proof (inclusion|entry)/
    ],
    [
      'an index with a leading zero',
      () => valid.proof.replace('\nindex 7\n', '\nindex 07\n'),
      /^log proof format: expected 'index <decimal>'/
    ],
    [
      'a changed proof hash',
      () => withLine(hashLine, flip(lines[hashLine])),
      /^log proof inclusion: the entry at index 7 gives root /
    ],
    [
      'a dropped proof hash',
      () => lines.filter((_, j) => j !== hashLine).join('\n'),
      /^log proof inclusion: .*too few/
    ],
    [
      'a duplicated proof hash',
      () => [...lines.slice(0, hashLine + 1), ...lines.slice(hashLine)].join('\n'),
      /^log proof inclusion: .*too many/
    ],
    [
      'a changed entry',
      () =>
        withLine(
          1,
          `extra ${Buffer.from(Buffer.from(lines[1].slice(6), 'base64').toString().replace('key ', 'kex ')).toString('base64')}`
        ),
      /^log proof entry: expected 'key <64 lowercase hex>'/
    ],
    [
      'no entry',
      () => lines.filter((_, j) => j !== 1).join('\n'),
      /^log proof entry: no 'extra' line/
    ],
    [
      'a changed checkpoint root',
      () => withLine(bodyStart + 2, flip(lines[bodyStart + 2])),
      /^log proof checkpoint: log signature: the signature by log.example.org\/verify-model\+dea5a7bb does not verify/
    ],
    [
      'a changed origin',
      () => withLine(bodyStart, 'log.example.org/other'),
      /^log proof checkpoint: log signature: the signature by /
    ],
    [
      'a changed log signature',
      () =>
        valid.proof.replace(
          /(— log\.example\.org\/verify-model )(\S+)/,
          (_, a: string, b: string) => a + flip(b)
        ),
      /^log proof checkpoint: log signature: .* does not verify/
    ],
    [
      'the log signature removed',
      () => valid.proof.replace(/— log\.example\.org\/verify-model \S+\n/, ''),
      /^log proof checkpoint: log signature: none by the log key log.example.org\/verify-model\+dea5a7bb/
    ],
    [
      'a changed cosignature',
      () =>
        valid.proof.replace(
          /(— witness\.example\/one )(\S+)/,
          (_, a: string, b: string) => a + flip(b)
        ),
      /^log proof checkpoint: witness: the cosignature by witness.example\/one\+44e6b588 does not verify/
    ],
    [
      'a cosignature removed, threshold 2',
      () => valid.proof.replace(/— witness\.example\/two \S+\n/, ''),
      /^log proof checkpoint: witness threshold: 1 of 3 configured witness\(es\) cosigned, 2 required/,
      2
    ],
    [
      'bad base64 in a hash',
      () => withLine(hashLine, lines[hashLine].replace(/^./, '*')),
      /^log proof format: hash on line \d+: not valid base64/
    ],
    [
      'URL-safe base64 in a hash',
      () => withLine(hashLine, Buffer.from(lines[hashLine], 'base64').toString('base64url')),
      /^log proof format: hash on line \d+: not valid base64/
    ],
    [
      'bad base64 in the entry',
      () => withLine(1, `${lines[1]}=`),
      /^log proof format: extra: not valid base64/
    ],
    [
      'bad base64 in a signature',
      () => valid.proof.replace(/(— log\.example\.org\/verify-model )(\S+)/, '$1***'),
      /^log proof checkpoint signature 1: not valid base64/
    ],
    [
      'truncated before the checkpoint',
      () => lines.slice(0, hashLine + 1).join('\n'),
      /^log proof format: no blank line before the checkpoint/
    ],
    [
      'truncated inside the checkpoint',
      () => valid.proof.slice(0, valid.proof.lastIndexOf('—') + 10),
      /^log proof checkpoint: does not end in a newline/
    ],
    [
      'truncated after the blank line',
      () => lines.slice(0, bodyStart).join('\n') + '\n',
      /^log proof format: no checkpoint after the blank line/
    ],
    [
      'a wrong first line',
      () => valid.proof.replace('c2sp.org/tlog-proof@v1', 'c2sp.org/tlog-proof@v2'),
      /^log proof format: the first line must be/
    ],
    [
      'a control character',
      () => valid.proof.replace('\nindex 7', '\r\nindex 7'),
      /^log proof format/
    ]
  ]
  for (const [name, mutate, expected, threshold] of mutations) {
    it(`refuses ${name}`, () => {
      const mutated = mutate()
      expect(mutated).not.toBe(valid.proof)
      expect(() => check(mutated, threshold)).toThrow(expected)
    })
  }

  it('refuses a proof for a key the entry does not list', () => {
    expect(() =>
      verifyLogProof(valid.proof, policy(1), {
        attestationDigest: valid.attestation,
        verifiedKeys: [raw('11'.repeat(32))]
      })
    ).toThrow(/^log proof entry: the verified key 1111.* is not listed/)
  })

  it('refuses a policy that can never pass', () => {
    expect(() => check(valid.proof, 4)).toThrow(
      /witness threshold 4 exceeds the 3 distinct witness key\(s\) given/
    )
  })
})
