// SBAs, keys and logs for the transparency-log tests, made with the project's own code.
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { signEnvelope } from '../../src/protocol/envelope.js'
import { generateKeyPair, parsePrivateKey, type PrivateKey } from '../../src/protocol/keys.js'
import { vectorsDir } from './paths.js'

const validCase = (
  JSON.parse(readFileSync(path.join(vectorsDir, 'sba.json'), 'utf8')) as {
    cases: { valid: boolean; envelope: { payload: string } }[]
  }
).cases.find(c => c.valid)!
const statement = JSON.parse(Buffer.from(validCase.envelope.payload, 'base64').toString('utf8'))

/** A valid statement, distinct for each `seed` (its build.env.SEED). */
export function statementBytes(seed: number): Uint8Array {
  const copy = structuredClone(statement)
  copy.predicate.build.env.SEED = String(seed)
  return Buffer.from(JSON.stringify(copy))
}

export interface KeyFiles {
  key: PrivateKey
  privatePath: string
  publicPath: string
  publicHex: string
}

export function writeKeyPair(dir: string, name: string): KeyFiles {
  const pair = generateKeyPair()
  const privatePath = path.join(dir, `${name}.key`)
  const publicPath = path.join(dir, `${name}.pub`)
  writeFileSync(privatePath, pair.privateKeyPem)
  writeFileSync(publicPath, pair.publicKeyPem)
  const key = parsePrivateKey(pair.privateKeyPem)
  return { key, privatePath, publicPath, publicHex: Buffer.from(key.publicKey.raw).toString('hex') }
}

/** Writes an SBA signed by `signers` for statement `seed`; returns its path. */
export function writeSba(dir: string, seed: number, signers: KeyFiles[]): string {
  const file = path.join(dir, `sba-${seed}.json`)
  writeFileSync(
    file,
    signEnvelope(
      statementBytes(seed),
      signers.map(s => s.key)
    )
  )
  return file
}
