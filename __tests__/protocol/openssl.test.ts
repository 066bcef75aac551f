// Interop with the real openssl binary: keys and signatures made by OpenSSL verify here, and
// signatures made here verify with OpenSSL. argv arrays only, never a shell.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { verifyAttestation } from '../../src/protocol/attestation.js'
import { toHex, sha256 } from '../../src/protocol/encoding.js'
import { PAYLOAD_TYPE, pae, parseEnvelope, signEnvelope } from '../../src/protocol/envelope.js'
import { parsePrivateKey, parsePublicKey, type PublicKey } from '../../src/protocol/keys.js'
import { createStatement } from '../../src/protocol/ledger.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'verify-model-openssl-'))
const file = (name: string) => path.join(dir, name)
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' })

afterAll(() => rmSync(dir, { recursive: true, force: true }))

const statement = createStatement({
  sourceUri: 'git+https://github.com/acme/tiny-model',
  gitCommit: '4b825dc642cb6eb9a060e54bf8d69288fbee4904',
  dependencies: [],
  image: { uri: 'oci://ghcr.io/acme/trainer', sha256: 'c'.repeat(64) },
  build: { command: ['python3', 'train.py'], sourceDateEpoch: 1700000000 }
})

/** PAE written out by hand, independently of pae(). */
const handPae = Buffer.concat([
  Buffer.from(`DSSEv1 ${PAYLOAD_TYPE.length} ${PAYLOAD_TYPE} ${statement.length} `),
  statement
])

describe('OpenSSL interop', () => {
  let publicKey: PublicKey

  beforeAll(() => {
    openssl('genpkey', '-algorithm', 'ed25519', '-out', file('k.pem'))
    openssl('pkey', '-in', file('k.pem'), '-pubout', '-out', file('k.pub'))
    openssl('pkey', '-pubin', '-in', file('k.pub'), '-outform', 'DER', '-out', file('k.der'))
    publicKey = parsePublicKey(readFileSync(file('k.pub'), 'utf8'))
  })

  it('computes the key id as sha256 of the DER OpenSSL writes, and reads its private key', () => {
    expect(publicKey.keyId).toBe(toHex(sha256(readFileSync(file('k.der')))))
    expect(parsePublicKey(readFileSync(file('k.der'))).keyId).toBe(publicKey.keyId)
    expect(parsePrivateKey(readFileSync(file('k.pem'), 'utf8')).publicKey.keyId).toBe(
      publicKey.keyId
    )
  })

  it('verifies an envelope signed by openssl pkeyutl over a hand-written PAE', () => {
    expect(Buffer.from(pae(PAYLOAD_TYPE, statement)).equals(handPae)).toBe(true)
    writeFileSync(file('pae.bin'), handPae)
    openssl(
      'pkeyutl',
      '-sign',
      '-rawin',
      '-inkey',
      file('k.pem'),
      '-in',
      file('pae.bin'),
      '-out',
      file('sig.bin')
    )
    const sba = JSON.stringify({
      payloadType: PAYLOAD_TYPE,
      payload: Buffer.from(statement).toString('base64'),
      signatures: [{ sig: readFileSync(file('sig.bin')).toString('base64') }]
    })
    const result = verifyAttestation(Buffer.from(sba), [publicKey], 1)
    expect(result.keyIds).toEqual([publicKey.keyId])
    expect(result.attestationDigest).toBe(toHex(sha256(handPae)))
  })

  it('signs envelopes that openssl pkeyutl -verify accepts, and openssl rejects a changed PAE', () => {
    const privateKey = parsePrivateKey(readFileSync(file('k.pem'), 'utf8'))
    const envelope = parseEnvelope(Buffer.from(signEnvelope(statement, [privateKey])))
    writeFileSync(file('ours.sig'), envelope.signatures[0].sig)
    writeFileSync(file('pae2.bin'), handPae)
    const verify = (data: string) =>
      spawnSync(
        'openssl',
        [
          'pkeyutl',
          '-verify',
          '-rawin',
          '-pubin',
          '-inkey',
          file('k.pub'),
          '-in',
          data,
          '-sigfile',
          file('ours.sig')
        ],
        { encoding: 'utf8' }
      )
    const accepted = verify(file('pae2.bin'))
    expect(accepted.status).toBe(0)
    expect(accepted.stdout).toContain('Signature Verified Successfully')
    writeFileSync(file('changed.bin'), Buffer.concat([handPae, Buffer.from(' ')]))
    expect(verify(file('changed.bin')).status).not.toBe(0)
  })
})
