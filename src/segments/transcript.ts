// The training transcript (PROTOCOL.md section 9): a second statement, signed with the SBA's
// keys, that commits to the root of every intermediate state of a segmented build.
import { invalid, VerifyError } from '../errors.js'
import { clip, utf8 } from '../protocol/encoding.js'
import { parseEnvelope, verifyEnvelope } from '../protocol/envelope.js'
import { attestationDigest } from '../protocol/capability.js'
import type { PublicKey } from '../protocol/keys.js'
import { MAX_SEGMENTS, Node } from '../protocol/ledger.js'
import { parseStrictJson } from '../protocol/strict-json.js'

const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1'
export const TRANSCRIPT_PREDICATE_TYPE = 'https://openclaw.dev/training-transcript/v1'
/** What `stateUri` must contain: replaced by the state's index. */
export const STATE_INDEX_PLACEHOLDER = '{i}'
// eslint-disable-next-line no-control-regex -- a URI template must not contain whitespace or controls
const SPACE_OR_CONTROL = /[\s\u0000-\u001f\u007f]/

export interface Transcript {
  /** The SBA this transcript belongs to: hex sha256 of its PAE. */
  attestationDigest: string
  segments: number
  /** `states[i - 1]` is S_i, the treeSha256 root of run i's whole /out. */
  states: string[]
  /** Where state i is published, with `{i}` for the index. */
  stateUri: string
}

export interface VerifiedTranscript extends Transcript {
  /** The transcript envelope's own attestation digest. */
  transcriptDigest: string
  keyIds: string[]
}

/** The statement bytes a publisher signs (2-space JSON and a newline), validated by parsing back. */
export function createTranscriptStatement(transcript: Transcript): Uint8Array {
  const statement = {
    _type: STATEMENT_TYPE,
    subject: [{ name: 'attestation', digest: { sha256: transcript.attestationDigest } }],
    predicateType: TRANSCRIPT_PREDICATE_TYPE,
    predicate: {
      segments: transcript.segments,
      states: transcript.states,
      stateUri: transcript.stateUri
    }
  }
  const bytes = utf8(`${JSON.stringify(statement, null, 2)}\n`)
  parseTranscriptStatement(bytes)
  return bytes
}

/** Every rule on the statement alone; errors are invalid and name the JSON path. */
export function parseTranscriptStatement(payload: Uint8Array): Transcript {
  return labelled(() => {
    const statement = new Node(parseStrictJson(payload, 'transcript'), []).object()
    statement.field('_type').constant(STATEMENT_TYPE)
    statement.field('predicateType').constant(TRANSCRIPT_PREDICATE_TYPE)
    const subjects = statement.field('subject').array()
    const named = subjects.filter(s => s.object().child('name').value === 'attestation')
    if (named.length !== 1)
      statement
        .field('subject')
        .fail(`expected exactly one subject named 'attestation', got ${named.length}`)
    const digest = named[0].field('digest').object().field('sha256').hex(32)
    const predicate = statement.field('predicate').object()
    const segments = predicate.field('segments').integer(2, MAX_SEGMENTS)
    const statesNode = predicate.field('states')
    const states = statesNode.array().map(state => state.hex(32))
    if (states.length !== segments)
      statesNode.fail(`expected ${segments} state roots (predicate.segments), got ${states.length}`)
    const uriNode = predicate.field('stateUri')
    const stateUri = uriNode.string()
    if (!stateUri.includes(STATE_INDEX_PLACEHOLDER) || SPACE_OR_CONTROL.test(stateUri))
      uriNode.fail(
        `expected a URL or path template containing ${STATE_INDEX_PLACEHOLDER} and no whitespace, got '${clip(stateUri)}'`
      )
    return { attestationDigest: digest, segments, states, stateUri }
  })
}

/**
 * The verifier's checks of section 9 on the transcript itself: its signatures (the SBA's trusted
 * keys and threshold), its subject is this SBA, and it has exactly the ledger's `segments` states.
 * Any failure is invalid.
 */
export function verifyTranscript(
  bytes: Uint8Array,
  trusted: PublicKey[],
  threshold: number,
  expected: { attestationDigest: string; segments: number }
): VerifiedTranscript {
  const envelope = labelled(() => parseEnvelope(bytes))
  const keys = labelled(() => verifyEnvelope(envelope, trusted, threshold))
  const transcript = parseTranscriptStatement(envelope.payload)
  if (transcript.attestationDigest !== expected.attestationDigest)
    throw invalid(
      `transcript subject: attestation digest ${transcript.attestationDigest} is not this SBA's ${expected.attestationDigest}: the transcript belongs to another SBA`
    )
  if (transcript.segments !== expected.segments)
    throw invalid(
      `transcript predicate.segments: ${transcript.segments} states, but the ledger's build.segments is ${expected.segments}`
    )
  return {
    ...transcript,
    transcriptDigest: attestationDigest(envelope),
    keyIds: keys.map(k => k.keyId)
  }
}

/** The shared envelope and statement code names its document 'SBA' or 'statement': say 'transcript'. */
function labelled<T>(body: () => T): T {
  try {
    return body()
  } catch (error) {
    if (!(error instanceof VerifyError)) throw error
    const message = error.message.replace(/^(SBA|statement)\b:?\s*/, '')
    throw new VerifyError(error.verdict, `transcript ${message}`, error.detail)
  }
}
