// Ed25519 keys in the forms docs/protocol.md section 3 accepts. Parsing checks form only; whether a
// public key is a usable curve point (not small-order) is decided by strict verification.
import { randomBytes } from 'node:crypto'
import { getPublicKey } from './ed25519.js'
import { invalid } from '../errors.js'
import { concatBytes, decodeBase64Strict, encodeBase64, sha256, toHex } from './encoding.js'

export interface PublicKey {
  /** The 32-byte Ed25519 public key. */
  raw: Uint8Array
  /** The 44-byte SubjectPublicKeyInfo DER. */
  spkiDer: Uint8Array
  /** hex(sha256(spkiDer)). */
  keyId: string
}

export interface PrivateKey {
  /** The 32-byte RFC 8032 private key (seed). */
  seed: Uint8Array
  publicKey: PublicKey
}

const SPKI_PREFIX = Uint8Array.from(Buffer.from('302a300506032b6570032100', 'hex'))
const PKCS8_PREFIX = Uint8Array.from(Buffer.from('302e020100300506032b657004220420', 'hex'))

const ACCEPTED_PUBLIC_FORMS =
  'accepted forms: PEM SPKI (-----BEGIN PUBLIC KEY-----), base64 of the 44-byte SPKI DER, ' +
  'the raw 32-byte key as 64 hex characters or as base64'

export function publicKeyFromRaw(raw: Uint8Array): PublicKey {
  if (raw.length !== 32)
    throw invalid(`Ed25519 public key must be 32 bytes, got ${raw.length}`, undefined, {
      code: 'KEY_FORMAT'
    })
  const spkiDer = concatBytes(SPKI_PREFIX, raw)
  return { raw: Uint8Array.from(raw), spkiDer, keyId: toHex(sha256(spkiDer)) }
}

/**
 * One public key in any accepted form. A Uint8Array is the content of a key file: binary SPKI DER
 * (44 bytes with the Ed25519 prefix) or UTF-8 text in one of the text forms.
 */
export function parsePublicKey(input: string | Uint8Array, field = 'public key'): PublicKey {
  if (typeof input !== 'string') {
    return fromSpkiDer(input) ?? parsePublicKey(Buffer.from(input).toString('utf8'), field)
  }
  const text = input.trim()
  const reject = (why: string): never => {
    throw invalid(`${field}: ${why}; ${ACCEPTED_PUBLIC_FORMS}`, undefined, { code: 'KEY_FORMAT' })
  }
  if (text.startsWith('-----BEGIN')) {
    const der = pemBody(text, 'PUBLIC KEY')
    const key = der === undefined ? undefined : fromSpkiDer(der)
    return key ?? reject(`not an Ed25519 key (${describePem(text)})`)
  }
  if (/^[0-9a-fA-F]{64}$/.test(text)) return publicKeyFromRaw(Buffer.from(text, 'hex'))
  let bytes: Uint8Array
  try {
    bytes = decodeBase64Strict(text, field)
  } catch {
    return reject('not an Ed25519 public key (neither PEM, hex nor base64)')
  }
  if (bytes.length === 32) return publicKeyFromRaw(bytes)
  return fromSpkiDer(bytes) ?? reject(`base64 of ${bytes.length} bytes is no Ed25519 key`)
}

/** Several keys: one per line in any single-line form, PEM blocks allowed, blank lines ignored. */
export function parsePublicKeys(text: string): PublicKey[] {
  const keys: PublicKey[] = []
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim()
    if (line === '') continue
    const field = `public key on line ${i + 1}`
    if (!line.startsWith('-----BEGIN')) {
      keys.push(parsePublicKey(line, field))
      continue
    }
    const end = lines.findIndex((l, j) => j > i && l.trim().startsWith('-----END'))
    if (end === -1)
      throw invalid(`${field}: PEM block without an -----END line`, undefined, {
        code: 'KEY_FORMAT'
      })
    keys.push(parsePublicKey(lines.slice(i, end + 1).join('\n'), field))
    i = end
  }
  if (keys.length === 0)
    throw invalid(`no public key given; ${ACCEPTED_PUBLIC_FORMS}`, undefined, {
      code: 'KEY_FORMAT'
    })
  return keys
}

/** An unencrypted PKCS#8 PEM Ed25519 private key (what `openssl genpkey -algorithm ed25519` writes). */
export function parsePrivateKey(pem: string, field = 'private key'): PrivateKey {
  const text = pem.trim()
  const der = pemBody(text, 'PRIVATE KEY')
  if (
    der === undefined ||
    der.length !== PKCS8_PREFIX.length + 32 ||
    !startsWith(der, PKCS8_PREFIX)
  ) {
    throw invalid(
      `${field}: not an Ed25519 PKCS#8 private key (${describePem(text)}); expected an unencrypted ` +
        `-----BEGIN PRIVATE KEY----- PEM as written by 'verify-model keygen' or ` +
        `'openssl genpkey -algorithm ed25519'`,
      undefined,
      { code: 'KEY_FORMAT' }
    )
  }
  return privateKeyFromSeed(der.subarray(PKCS8_PREFIX.length))
}

export function privateKeyFromSeed(seed: Uint8Array): PrivateKey {
  const copy = Uint8Array.from(seed)
  return { seed: copy, publicKey: publicKeyFromRaw(getPublicKey(copy)) }
}

export function generateKeyPair(): { privateKeyPem: string; publicKeyPem: string; keyId: string } {
  const key = privateKeyFromSeed(randomBytes(32))
  return {
    privateKeyPem: privateKeyPem(key),
    publicKeyPem: publicKeyPem(key.publicKey),
    keyId: key.publicKey.keyId
  }
}

export function publicKeyPem(key: PublicKey): string {
  return toPem('PUBLIC KEY', key.spkiDer)
}

function privateKeyPem(key: PrivateKey): string {
  return toPem('PRIVATE KEY', concatBytes(PKCS8_PREFIX, key.seed))
}

function toPem(label: string, der: Uint8Array): string {
  const lines = encodeBase64(der).match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}

/** The DER inside exactly one PEM block with the given label (RFC 7468), or undefined. */
function pemBody(text: string, label: string): Uint8Array | undefined {
  const match = new RegExp(`^-----BEGIN ${label}-----([^-]*)-----END ${label}-----$`).exec(text)
  if (match === null || !/^[A-Za-z0-9+/=\s]*$/.test(match[1])) return undefined
  try {
    return decodeBase64Strict(match[1].replace(/\s+/g, ''), 'PEM body')
  } catch {
    return undefined
  }
}

function describePem(text: string): string {
  const label = /^-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1]
  return label === undefined ? 'not PEM' : `PEM '${label}' block, malformed or of another kind`
}

function fromSpkiDer(der: Uint8Array): PublicKey | undefined {
  if (der.length !== SPKI_PREFIX.length + 32 || !startsWith(der, SPKI_PREFIX)) return undefined
  return publicKeyFromRaw(der.subarray(SPKI_PREFIX.length))
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return prefix.every((b, i) => bytes[i] === b)
}
