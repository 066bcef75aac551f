// k-of-n acceptance of rebuild attestations (PROTOCOL.md section 8): the model is accepted on the
// word of k distinct trusted rebuilder keys, each with an attestation that counts.
import { invalid, messageOf, unverifiable, type VerifyError } from '../errors.js'
import { attestationDigest } from '../protocol/capability.js'
import { clip } from '../protocol/encoding.js'
import { parseEnvelope, verifiedSigners } from '../protocol/envelope.js'
import type { PublicKey } from '../protocol/keys.js'
import { verifyLogProof, type LogPolicy } from '../tlog/verify.js'
import {
  PASSED,
  REBUILD_POLICY_URI,
  REBUILT_LEVEL,
  VSA_PREDICATE_TYPE,
  parseVsa,
  type VsaStatement
} from './vsa.js'

/** A rebuild attestation is a few hundred bytes; larger files are refused before parsing. */
export const MAX_REBUILD_ATTESTATION_BYTES = 1024 * 1024

/** Bytes read from a path or URL, or why they could not be. */
export type Fetched = { bytes: Uint8Array } | { error: string }

export interface RebuildCandidate {
  /** Where it came from (the path or URL as given). */
  source: string
  attestation: Fetched
  /** Its transparency-log proof, when one was given (same order as the attestations). */
  logProof?: Fetched
}

/** The model and the SBA every counting attestation must name. */
export interface RebuildSubject {
  modelRoot: string
  /** The SBA's attestation digest, hex sha256(PAE). */
  attestationDigest: string
}

export interface RebuildPolicy {
  /** The trusted rebuilder keys. */
  trustedKeys: PublicKey[]
  /** How many distinct trusted keys must have a counting attestation. */
  threshold: number
  /** Set when a log is required: every counted attestation must carry a proof valid under it. */
  log?: LogPolicy
}

/**
 * Why a rule failed starts with the rule's name (`signature`, `statement`, `predicateType`,
 * `policy`, `verificationResult`, `verifiedLevels`, `subject`, `inputAttestations`, `logProof`,
 * `duplicate`, `fetch`), then says what was found and what was expected.
 */
export interface AttestationVerdict {
  source: string
  /** The trusted keys whose signature on it verified. */
  keyIds: string[]
  counted: boolean
  /** Empty when it counted. */
  why: string
  verifierId?: string
  timeVerified?: string
  /** The attestation's own digest, hex sha256(PAE): what a log lists. */
  attestationDigest?: string
  logIndex?: number
}

export interface Acceptance {
  verdicts: AttestationVerdict[]
  /** The distinct trusted keys with a counting attestation. */
  countedKeys: PublicKey[]
  /** Set when fewer than the threshold counted: invalid, or unverifiable if something could not be fetched. */
  failure?: VerifyError
}

export function acceptRebuilds(
  candidates: readonly RebuildCandidate[],
  subject: RebuildSubject,
  policy: RebuildPolicy
): Acceptance {
  const counted = new Map<string, { key: PublicKey; by: number }>()
  const unreachable: string[] = []
  const verdicts = candidates.map((candidate, i): AttestationVerdict => {
    const judged = judge(candidate, subject, policy)
    const verdict: AttestationVerdict = {
      source: candidate.source,
      keyIds: judged.keys.map(k => k.keyId),
      counted: false,
      why: judged.why,
      ...judged.facts
    }
    if (judged.unreachable === true)
      unreachable.push(`#${i + 1} ${clip(candidate.source)}: ${judged.why}`)
    if (judged.why !== '') return verdict
    const fresh = judged.keys.filter(k => !counted.has(k.keyId))
    if (fresh.length === 0) {
      const by = [...new Set(judged.keys.map(k => (counted.get(k.keyId)?.by ?? 0) + 1))]
      verdict.why = `duplicate: its key(s) ${verdict.keyIds.map(short).join(', ')} already counted (attestation ${by.join(', ')}); one key counts once`
      return verdict
    }
    for (const key of fresh) counted.set(key.keyId, { key, by: i })
    verdict.counted = true
    return verdict
  })
  const countedKeys = [...counted.values()].map(c => c.key)
  if (countedKeys.length >= policy.threshold) return { verdicts, countedKeys }
  const summary =
    `rebuild attestations: ${countedKeys.length} distinct trusted rebuilder key(s) with a counting attestation, ` +
    `threshold is ${policy.threshold}`
  const failure =
    unreachable.length > 0
      ? unverifiable(`${summary}; could not fetch ${unreachable.join('; ')}`)
      : invalid(`${summary}; ${reasons(verdicts)}`)
  return { verdicts, countedKeys, failure }
}

interface Judgement {
  keys: PublicKey[]
  why: string
  unreachable?: boolean
  facts?: Pick<AttestationVerdict, 'verifierId' | 'timeVerified' | 'attestationDigest' | 'logIndex'>
}

/** One attestation against every rule of section 8 (and the log, when one is required). */
function judge(
  candidate: RebuildCandidate,
  subject: RebuildSubject,
  policy: RebuildPolicy
): Judgement {
  if ('error' in candidate.attestation) {
    return { keys: [], why: `fetch: ${candidate.attestation.error}`, unreachable: true }
  }
  const bytes = candidate.attestation.bytes
  if (bytes.length > MAX_REBUILD_ATTESTATION_BYTES) {
    return {
      keys: [],
      why: `envelope: ${bytes.length} bytes exceed the ${MAX_REBUILD_ATTESTATION_BYTES}-byte limit`
    }
  }
  let envelope
  try {
    envelope = parseEnvelope(bytes, 'rebuild attestation')
  } catch (error) {
    return { keys: [], why: `envelope: ${messageOf(error)}` }
  }
  const keys = verifiedSigners(envelope, policy.trustedKeys)
  if (keys.length === 0) {
    const hints = envelope.signatures.map(s => (s.keyid === undefined ? '(none)' : short(s.keyid)))
    return {
      keys,
      why: `signature: no trusted rebuilder key signed it (signature key id(s) ${hints.map(h => clip(h)).join(', ')}; trusted ${policy.trustedKeys.map(k => short(k.keyId)).join(', ')})`
    }
  }
  const digest = attestationDigest(envelope)
  let statement: VsaStatement
  try {
    statement = parseVsa(envelope.payload)
  } catch (error) {
    return { keys, why: `statement: ${messageOf(error)}`, facts: { attestationDigest: digest } }
  }
  const facts = {
    verifierId: statement.verifierId,
    timeVerified: statement.timeVerified,
    attestationDigest: digest
  }
  const broken = brokenRule(statement, subject)
  if (broken !== undefined) return { keys, why: broken, facts }
  if (policy.log === undefined) return { keys, why: '', facts }
  const proof = candidate.logProof
  if (proof === undefined) {
    return {
      keys,
      why: 'logProof: a log key is set, so every counted attestation needs its log proof (give them in the same order as the attestations)',
      facts
    }
  }
  if ('error' in proof) return { keys, why: `logProof: ${proof.error}`, unreachable: true, facts }
  try {
    const inclusion = verifyLogProof(proof.bytes, policy.log, {
      attestationDigest: digest,
      verifiedKeys: keys.map(k => k.raw)
    })
    return { keys, why: '', facts: { ...facts, logIndex: inclusion.index } }
  } catch (error) {
    return { keys, why: `logProof: ${messageOf(error)}`, facts }
  }
}

/** The first rule of section 8 the statement breaks, named; undefined when it keeps them all. */
function brokenRule(statement: VsaStatement, subject: RebuildSubject): string | undefined {
  const quoted = (value: string) => `'${clip(value)}'`
  if (statement.predicateType !== VSA_PREDICATE_TYPE) {
    return `predicateType: ${quoted(statement.predicateType)}, expected '${VSA_PREDICATE_TYPE}'`
  }
  if (statement.policyUri !== REBUILD_POLICY_URI) {
    return `policy: policy.uri is ${quoted(statement.policyUri)}, expected '${REBUILD_POLICY_URI}'`
  }
  if (statement.verificationResult !== PASSED) {
    return `verificationResult: ${quoted(statement.verificationResult)}, expected '${PASSED}'`
  }
  if (!statement.verifiedLevels.includes(REBUILT_LEVEL)) {
    return `verifiedLevels: [${statement.verifiedLevels.map(quoted).join(', ')}] lacks '${REBUILT_LEVEL}'`
  }
  if (!statement.subjectRoots.includes(subject.modelRoot)) {
    return `subject: it attests treeSha256 ${statement.subjectRoots.map(short).join(', ') || '(none)'}, the model's root is ${short(subject.modelRoot)}`
  }
  if (!statement.inputAttestations.some(input => input.sha256 === subject.attestationDigest)) {
    return `inputAttestations: it attests SBA digest ${statement.inputAttestations.map(i => short(i.sha256)).join(', ')}, this SBA's attestation digest is ${short(subject.attestationDigest)}`
  }
  return undefined
}

function short(hex: string): string {
  return hex.slice(0, 12)
}

/** Each refused attestation by number and the rule it broke. */
function reasons(verdicts: AttestationVerdict[]): string {
  const refused = verdicts.flatMap((v, i) =>
    v.counted ? [] : [`#${i + 1} ${clip(v.source)}: ${v.why.split(':')[0]}`]
  )
  return refused.length === 0 ? 'no rebuild attestation given' : `refused ${refused.join(', ')}`
}
