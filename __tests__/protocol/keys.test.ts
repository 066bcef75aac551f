import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { toHex } from '../../src/protocol/encoding.js'
import {
  generateKeyPair,
  parsePrivateKey,
  parsePublicKey,
  parsePublicKeys,
  publicKeyPem
} from '../../src/protocol/keys.js'
import { vectorsDir } from '../helpers/paths.js'

const [k1, k2, k3] = (
  JSON.parse(readFileSync(path.join(vectorsDir, 'keys.json'), 'utf8')) as {
    keys: {
      publicPem: string
      publicDerBase64: string
      publicRawHex: string
      keyid: string
      privatePkcs8Pem: string
    }[]
  }
).keys

const ACCEPTED = 'accepted forms: PEM SPKI'

describe('parsePublicKey', () => {
  it('accepts binary SPKI DER and key-file bytes, upper-case hex and surrounding whitespace', () => {
    const der = Buffer.from(k1.publicDerBase64, 'base64')
    expect(parsePublicKey(der).keyId).toBe(k1.keyid)
    expect(parsePublicKey(Buffer.from(k1.publicPem)).keyId).toBe(k1.keyid)
    expect(parsePublicKey(k1.publicRawHex.toUpperCase()).keyId).toBe(k1.keyid)
    expect(parsePublicKey(`\n  ${k1.publicPem.replace(/\n/g, '\r\n')}  \n`).keyId).toBe(k1.keyid)
  })

  it.each([
    ['31 raw bytes', k1.publicRawHex.slice(2)],
    ['33 raw bytes', `${k1.publicRawHex}00`],
    ['a private key PEM', k1.privatePkcs8Pem],
    ['an RSA-sized DER', Buffer.alloc(300, 1).toString('base64')],
    ['a PEM with a bad body', k1.publicPem.replace('MCow', 'MC!w')],
    [
      'an SPKI DER of another algorithm',
      Buffer.from(`302a300506032b6571032100${k1.publicRawHex}`, 'hex').toString('base64')
    ],
    ['text', 'hello']
  ])('rejects %s, listing the accepted forms', (_, input) => {
    expect(() => parsePublicKey(input, '--public-key')).toThrow(
      expect.objectContaining({
        verdict: 'invalid',
        message: expect.stringMatching(new RegExp(`^--public-key: .*${ACCEPTED}`))
      })
    )
  })

  it('writes PEM that parses back to the same key', () => {
    const key = parsePublicKey(k2.publicRawHex)
    expect(publicKeyPem(key)).toBe(k2.publicPem)
  })
})

describe('parsePublicKeys', () => {
  it('reads one key per line and PEM blocks, ignoring blank lines', () => {
    const text = `\n${k1.publicRawHex}\n\n${k2.publicPem}\r\n  ${k3.publicDerBase64}  \n\n`
    expect(parsePublicKeys(text).map(k => k.keyId)).toEqual([k1.keyid, k2.keyid, k3.keyid])
  })

  it('names the line of a bad key', () => {
    expect(() => parsePublicKeys(`${k1.publicRawHex}\n\nnot-a-key\n`)).toThrow(
      'public key on line 3: not an Ed25519 public key'
    )
  })

  it('rejects an unterminated PEM block and an empty list', () => {
    expect(() => parsePublicKeys(k1.publicPem.replace(/-----END.*\n/, ''))).toThrow(
      'public key on line 1: PEM block without an -----END line'
    )
    expect(() => parsePublicKeys('\n \n')).toThrow('no public key given')
  })
})

describe('private keys', () => {
  it('rejects anything but an unencrypted PKCS#8 Ed25519 PEM', () => {
    expect(() => parsePrivateKey(k1.publicPem)).toThrow(
      "private key: not an Ed25519 PKCS#8 private key (PEM 'PUBLIC KEY' block"
    )
    expect(() =>
      parsePrivateKey(
        '-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----'
      )
    ).toThrow("PEM 'ENCRYPTED PRIVATE KEY' block")
    expect(() => parsePrivateKey(k1.privatePkcs8Pem.replace('MC4CAQAw', 'MC4CAQEw'))).toThrow(
      'not an Ed25519 PKCS#8 private key'
    )
  })

  it('generates a key pair whose PEMs parse to the reported key id', () => {
    const pair = generateKeyPair()
    const privateKey = parsePrivateKey(pair.privateKeyPem)
    const publicKey = parsePublicKey(pair.publicKeyPem)
    expect(pair.keyId).toMatch(/^[0-9a-f]{64}$/)
    expect(privateKey.publicKey.keyId).toBe(pair.keyId)
    expect(publicKey.keyId).toBe(pair.keyId)
    expect(toHex(publicKey.raw)).toBe(toHex(privateKey.publicKey.raw))
    expect(generateKeyPair().keyId).not.toBe(pair.keyId)
  })
})
