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
