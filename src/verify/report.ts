import type { Verdict } from '../errors.js'
import type { ManifestEntry, TreeDigest } from '../digest/types.js'
import type { ManifestDiff } from '../compare/manifest-diff.js'
import type { AttestationVerdict } from '../attest/accept.js'
import type { LogProofResult } from '../tlog/verify.js'
import type { IsaLevel } from '../protocol/isa.js'

export const REPORT_SCHEMA_VERSION = 1

export type CheckStatus = 'pass' | 'fail' | 'skip'

/** One row of the report's table of checks, in the order they ran. */
export interface Check {
  name: string
  status: CheckStatus
  detail: string
}

export interface BuildSummary {
  exitCode: number
  durationMs: number
  logTail: string
}

/** Everything a verification found; written as the JSON report and rendered as the summary. */
export interface Report {
  schemaVersion: typeof REPORT_SCHEMA_VERSION
  mode: 'verify' | 'reproduce' | 'check' | 'attested'
  result: Verdict
  /** One line: why the result is what it is. */
  reason: string
  /** Longer material behind the reason, e.g. the build log tail. */
  detail?: string
  checks: Check[]
  attestationDigest?: string
  keyIds?: string[]
  source?: { uri: string; commit: string }
  image?: string
  datasetRoot?: string
  /** The ledger's `build.isa`; null when unpinned. */
  isa?: IsaLevel | null
  /** For an unpinned ledger: the result depends on the runner's CPU, and how to pin it. */
  cpuDependence?: string
  build?: BuildSummary
  reproduced?: TreeDigest
  downloaded?: TreeDigest
  diff?: ManifestDiff
  /** Per changed file, lines that explain the difference (tensors, first differing byte). */
  explanations?: Record<string, string[]>
  capability?: string
  expectedCapability?: string
  /** Mode attested: every rebuild attestation given, whether it counted and why not. */
  rebuildAttestations?: AttestationVerdict[]
  rebuilderThreshold?: number
  /** Path of the rebuild attestation (VSA) this verifier signed after a passing rebuild. */
  rebuildAttestation?: string
  /** The transparency-log proof that was checked (PROTOCOL.md section 7). */
  log?: LogProofResult
  /** A segmented build's spot check (PROTOCOL.md section 9). */
  segments?: SegmentsReport
}

export interface SegmentsReport {
  /** N, the ledger's build.segments. */
  total: number
  /** The transcript envelope's attestation digest. */
  transcriptDigest: string
  /** The segments re-run, sorted. */
  indices: number[]
  /** The chance a transcript with `forged` forged segments escapes these re-runs. */
  escape: { forged: number; probability: number }[]
  /** One row per segment re-run, in order, the failing one last. */
  runs: SegmentRow[]
}

export interface SegmentRow {
  index: number
  /** S_(i-1) as fetched and checked (absent for segment 1). */
  prevRoot?: string
  /** S_i as the transcript commits to it. */
  expectedRoot: string
  /** What the re-run left in /out. */
  root?: string
  durationMs?: number
  status: 'pass' | 'fail'
}

/** What a report, the job summary and the CLI say about a ledger without `build.isa`. */
export const UNPINNED_ISA_NOTE =
  "the ledger does not pin build.isa, so the result depends on the runner's CPU (the image's libraries pick their kernels from it): the publisher pins it with build.isa, e.g. `verify-model ledger init --isa x86-64-v3`, and checks with `verify-model build --cross-check`"

export function shortDigest(hex: string): string {
  return hex.slice(0, 12)
}

export function describeEntry(entry: ManifestEntry): string {
  return `${entry.size} B, sha256 ${shortDigest(entry.sha256)}`
}
