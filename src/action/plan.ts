// mode: plan (PROTOCOL.md section 9): draw the segments a matrix of verify jobs re-runs, one
// job per index, after checking the SBA (and the transcript, when given) so that a broken release
// fails in the plan job already.
import { invalid, unverifiable } from '../errors.js'
import { verifyAttestation } from '../protocol/attestation.js'
import type { PublicKey } from '../protocol/keys.js'
import {
  escapeChances,
  resolveSelection,
  type RandomInt,
  type SegmentSelection
} from '../segments/selection.js'
import { verifyTranscript } from '../segments/transcript.js'

export interface PlanRequest {
  sba: Uint8Array
  transcript?: Uint8Array
  trustedKeys: PublicKey[]
  threshold: number
  segments: SegmentSelection
}

export interface SegmentPlan {
  total: number
  indices: number[]
  escape: { forged: number; probability: number }[]
}

export function planSegments(request: PlanRequest, random?: RandomInt): SegmentPlan {
  const attestation = verifyAttestation(request.sba, request.trustedKeys, request.threshold)
  const total = attestation.ledger.build.segments
  if (total === undefined)
    throw invalid(
      'predicate.build.segments: the ledger is not a segmented build: there are no segments to plan (use mode verify or reproduce)'
    )
  if (request.transcript !== undefined)
    verifyTranscript(request.transcript, request.trustedKeys, request.threshold, {
      attestationDigest: attestation.attestationDigest,
      segments: total
    })
  let indices: number[]
  try {
    indices = resolveSelection(request.segments, total, random)
  } catch (error) {
    throw unverifiable(`segments: ${(error as Error).message}`)
  }
  return { total, indices, escape: escapeChances(total, indices.length) }
}
