// The rebuild attestation (PROTOCOL.md section 8): a SLSA Verification Summary Attestation v1
// stating that a verifier rebuilt the model of one SBA, in a DSSE envelope signed with Ed25519.
import { invalid } from '../errors.js'
import { clip, utf8 } from '../protocol/encoding.js'
import { signEnvelope } from '../protocol/envelope.js'
import type { PrivateKey } from '../protocol/keys.js'
import { formatJsonPath, isJsonObject, parseStrictJson } from '../protocol/strict-json.js'

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1'
export const VSA_PREDICATE_TYPE = 'https://slsa.dev/verification_summary/v1'
export const REBUILD_POLICY_URI = 'https://openclaw.dev/verify-model/policy/rebuild/v1'
export const REBUILT_LEVEL = 'VERIFY_MODEL_REBUILT'
export const PASSED = 'PASSED'
/** `inputAttestations[0].uri` when the SBA was not fetched from a URL. */
export const SBA_URN = 'urn:openclaw:sba'

/** `resourceUri` when the model was not fetched from one URL. */
export function modelUrn(root: string): string {
  return `urn:openclaw:model:treeSha256:${root}`
}

/** What a verifier that rebuilt a model states about it. */
export interface RebuildFacts {
  /** The model's treeSha256 root (the download's, or the rebuild's when nothing was downloaded). */
  modelRoot: string
  /** The SBA's attestation digest, hex sha256(PAE). */
  attestationDigest: string
  /** A URI naming the rebuilder. */
  verifierId: string
  timeVerified: Date
  /** Where the model was fetched; default its urn: form. */
  resourceUri?: string
  /** Where the SBA was fetched; default `urn:openclaw:sba`. */
  sbaUri?: string
}

/** A rebuild attestation's statement, parsed; the rules of acceptance are in accept.ts. */
export interface VsaStatement {
  /** Every subject's treeSha256 (subjects without one are kept out). */
  subjectRoots: string[]
  predicateType: string
  verifierId: string
  timeVerified: string
  resourceUri: string
  policyUri: string
  inputAttestations: { uri: string; sha256: string }[]
  verificationResult: string
  verifiedLevels: string[]
}

const HEX64 = /^[0-9a-f]{64}$/
// RFC 3339 date-time; the calendar is checked by Date below.
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/
// A URI: a scheme, then no whitespace or control characters.
// eslint-disable-next-line no-control-regex
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s\u0000-\u001f\u007f]+$/

/** RFC 3339, UTC, whole seconds: `2026-12-01T12:00:00Z`. */
export function rfc3339Seconds(time: Date): string {
  if (Number.isNaN(time.getTime())) throw invalid('timeVerified: the clock gave an invalid date')
  return time.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

export function isUri(value: string): boolean {
  return URI.test(value)
}

/** The statement's bytes (2-space JSON and a newline), exactly section 8's field set. */
export function createVsa(facts: RebuildFacts): Uint8Array {
  for (const [field, value] of [
    ['modelRoot', facts.modelRoot],
    ['attestationDigest', facts.attestationDigest]
  ] as const) {
    if (!HEX64.test(value))
      throw invalid(`${field}: expected 64 lowercase hex, got '${clip(value)}'`)
  }
  const uris = {
    'verifier.id': facts.verifierId,
    resourceUri: facts.resourceUri ?? modelUrn(facts.modelRoot),
    'inputAttestations[0].uri': facts.sbaUri ?? SBA_URN
  }
  for (const [field, value] of Object.entries(uris)) {
    if (!isUri(value)) throw invalid(`${field}: expected a URI, got '${clip(value)}'`)
  }
  const statement = {
    _type: STATEMENT_TYPE,
    subject: [{ name: 'model', digest: { treeSha256: facts.modelRoot } }],
    predicateType: VSA_PREDICATE_TYPE,
    predicate: {
      verifier: { id: uris['verifier.id'] },
      timeVerified: rfc3339Seconds(facts.timeVerified),
      resourceUri: uris.resourceUri,
      policy: { uri: REBUILD_POLICY_URI },
      inputAttestations: [
        { uri: uris['inputAttestations[0].uri'], digest: { sha256: facts.attestationDigest } }
      ],
      verificationResult: PASSED,
      verifiedLevels: [REBUILT_LEVEL]
    }
  }
  const bytes = utf8(`${JSON.stringify(statement, null, 2)}\n`)
  parseVsa(bytes)
  return bytes
}

/** The signed rebuild attestation: DSSE envelope JSON with one signature. */
export function signVsa(facts: RebuildFacts, key: PrivateKey): string {
  return signEnvelope(createVsa(facts), [key])
}

/**
 * Strict parse of a rebuild attestation's statement (strict JSON: no duplicate keys), every field
 * of section 8 present with its type. Values are judged by the acceptance rules, so a well-formed
 * `FAILED` statement parses. Fields section 8 does not name (SLSA's optional ones) are ignored.
 */
export function parseVsa(payload: Uint8Array): VsaStatement {
  const root = parseStrictJson(payload, 'rebuild attestation statement')
  const statement = object(root, [])
  if (string(statement, ['_type']) !== STATEMENT_TYPE) {
    fail(['_type'], `expected '${STATEMENT_TYPE}'`)
  }
  const subjects = array(statement, ['subject'])
  if (subjects.length === 0) fail(['subject'], 'expected at least one subject')
  const subjectRoots = subjects.flatMap((_, i) => {
    const digest = object(object(subjects[i], ['subject', i]).digest, ['subject', i, 'digest'])
    return digest.treeSha256 === undefined
      ? []
      : [hex(digest, ['subject', i, 'digest', 'treeSha256'])]
  })
  const predicate = object(statement.predicate, ['predicate'])
  const at = (...path: (string | number)[]) => ['predicate', ...path]
  const timeVerified = string(predicate, at('timeVerified'))
  if (!RFC3339.test(timeVerified) || Number.isNaN(Date.parse(timeVerified))) {
    fail(at('timeVerified'), `expected an RFC 3339 date-time, got '${clip(timeVerified)}'`)
  }
  const inputs = array(predicate, at('inputAttestations'))
  const levels = array(predicate, at('verifiedLevels'))
  return {
    subjectRoots,
    predicateType: string(statement, ['predicateType']),
    verifierId: string(object(predicate.verifier, at('verifier')), at('verifier', 'id')),
    timeVerified,
    resourceUri: string(predicate, at('resourceUri')),
    policyUri: string(object(predicate.policy, at('policy')), at('policy', 'uri')),
    inputAttestations: inputs.map((input, i) => {
      const entry = object(input, at('inputAttestations', i))
      const digest = object(entry.digest, at('inputAttestations', i, 'digest'))
      return {
        uri: string(entry, at('inputAttestations', i, 'uri')),
        sha256: hex(digest, at('inputAttestations', i, 'digest', 'sha256'))
      }
    }),
    verificationResult: string(predicate, at('verificationResult')),
    verifiedLevels: levels.map((level, i) => {
      if (typeof level !== 'string') fail(at('verifiedLevels', i), 'expected a string')
      return level
    })
  }
}

type Path = (string | number)[]
type JsonRecord = Record<string, unknown>

function fail(path: Path, message: string): never {
  throw invalid(`rebuild attestation statement: ${formatJsonPath(path) || '(root)'}: ${message}`)
}

function object(value: unknown, path: Path): JsonRecord {
  if (!isJsonObject(value)) fail(path, value === undefined ? 'missing' : 'expected an object')
  return value
}

/** The field at the end of `path` in `parent`. */
function field(parent: JsonRecord, path: Path): unknown {
  return Object.getOwnPropertyDescriptor(parent, path[path.length - 1])?.value
}

function string(parent: JsonRecord, path: Path): string {
  const value = field(parent, path)
  if (typeof value !== 'string' || value === '') {
    fail(path, value === undefined ? 'missing' : 'expected a non-empty string')
  }
  return value
}

function array(parent: JsonRecord, path: Path): unknown[] {
  const value = field(parent, path)
  if (!Array.isArray(value)) fail(path, value === undefined ? 'missing' : 'expected an array')
  return value
}

function hex(parent: JsonRecord, path: Path): string {
  const value = string(parent, path)
  if (!HEX64.test(value)) fail(path, `expected 64 lowercase hex, got '${clip(value)}'`)
  return value
}
