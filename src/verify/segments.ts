// The verifier's side of PROTOCOL.md section 9: a segmented build is checked by its signed
// transcript, the model against state N, and k re-run segments against their state roots.
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { mismatch, unverifiable, VerifyError } from '../errors.js'
import type { TreeDigest } from '../digest/types.js'
import type { VerifiedAttestation } from '../protocol/attestation.js'
import { collectOutputs } from '../reproduce/outputs.js'
import { DEFAULT_MAX_OUTPUT_BYTES } from '../reproduce/limits.js'
import { withPreparedBuild, type ReproducePhase } from '../reproduce/index.js'
import { diffManifests } from '../compare/manifest-diff.js'
import { rerunSegment } from '../segments/run.js'
import {
  escapeChances,
  formatPercent,
  resolveSelection,
  type RandomInt
} from '../segments/selection.js'
import { fetchState, type FetchedState } from '../segments/states.js'
import { verifyTranscript, type VerifiedTranscript } from '../segments/transcript.js'
import type { Phase, VerifyDeps, VerifyRequest } from './pipeline.js'
import { shortDigest, type Report, type SegmentRow } from './report.js'

/** The part of the pipeline's check table this step drives. */
export interface SegmentChecks {
  start(phase: Phase): void
  pass(detail: string): void
  /** Fills in a passed check's detail after the fact (the shared phases). */
  detail(phase: Phase, detail: string): void
}

export interface SpotCheckContext {
  request: VerifyRequest
  deps: VerifyDeps & { random?: RandomInt }
  attestation: VerifiedAttestation
  /** Hashes the downloaded model (the pipeline's 'hash' check), after the transcript passed. */
  hashDownload: () => Promise<TreeDigest>
  report: Report
  checks: SegmentChecks
  /** The pipeline's handler for the shared phases (source, dependencies, dataset, image). */
  onPhase: (phase: ReproducePhase, detail?: string) => void
}

/** Runs every rule of section 9; returns the download's digest and the passing reason. */
export async function spotCheckSegments(
  context: SpotCheckContext
): Promise<{ downloaded: TreeDigest; reason: string }> {
  const { request, deps, attestation, report, checks } = context
  const { ledger } = attestation
  const segments = ledger.build.segments
  if (segments === undefined)
    throw unverifiable(
      'transcript: the ledger has no build.segments, so there is no transcript to check: remove the transcript and segments'
    )
  if (request.transcript === undefined || request.segments === undefined)
    throw unverifiable(
      `predicate.build.segments: the build runs as ${segments} segments and is checked by its signed transcript: give the transcript and segments (a number k to re-run, or indices)`
    )

  checks.start('transcript')
  const transcript = verifyTranscript(
    request.transcript.bytes,
    request.trustedKeys,
    request.threshold,
    { attestationDigest: attestation.attestationDigest, segments }
  )
  let indices: number[]
  try {
    indices = resolveSelection(request.segments, segments, deps.random)
  } catch (error) {
    throw unverifiable(`segments: ${(error as Error).message}`)
  }
  const escape = escapeChances(segments, indices.length)
  report.segments = {
    total: segments,
    transcriptDigest: transcript.transcriptDigest,
    indices,
    escape,
    runs: []
  }
  checks.pass(
    `${segments} state roots signed by ${transcript.keyIds.map(shortDigest).join(', ')} for this SBA; re-running ${describeSpotCheck(report.segments)}`
  )

  const fetchOptions = {
    transcriptLocation: request.transcript.location,
    workDir: path.join(request.workDir, 'states'),
    maxBytes: request.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES
  }
  const downloaded = await context.hashDownload()
  checks.start('state')
  await checkFinalState(context, transcript, downloaded, fetchOptions)

  await withPreparedBuild(
    ledger,
    {
      workDir: request.workDir,
      datasetDir: request.datasetDir,
      resolveDataset: deps.resolveDataset,
      allowNetwork: request.allowNetwork,
      timeoutCapSeconds: request.timeoutCapSeconds,
      memoryBytes: request.memoryBytes,
      maxOutputBytes: request.maxOutputBytes,
      onPhase: context.onPhase
    },
    { run: deps.run },
    async prepared => {
      checks.detail('source', `commit ${prepared.commit}`)
      checks.detail('dependencies', `${ledger.dependencies.length} pinned file(s) match`)
      checks.detail('dataset', prepared.dataset ? `root ${prepared.dataset.root}` : 'none declared')
      checks.detail('image', prepared.imageReference)
      for (const index of indices) {
        checks.start(`segment ${index}`)
        const row: SegmentRow = {
          index,
          expectedRoot: transcript.states[index - 1],
          status: 'fail'
        }
        report.segments?.runs.push(row)
        let prev: FetchedState | undefined
        try {
          if (index > 1) {
            deps.reporter.info(`fetching state ${index - 1}, the segment's /prev`)
            prev = await fetchState(transcript, index - 1, fetchOptions)
            row.prevRoot = prev.digest.root
          }
          deps.reporter.info(`re-running segment ${index} of ${segments}`)
          const rerun = await rerunSegment(
            prepared,
            index,
            prev && { dir: prev.dir, root: prev.digest.root },
            row.expectedRoot,
            chunk => deps.reporter.buildLog(chunk)
          )
          row.root = rerun.root
          row.durationMs = rerun.durationMs
          if (rerun.root !== row.expectedRoot)
            throw mismatch(
              `segment ${index}: re-run from state ${index - 1} gives root ${rerun.root}, but the transcript commits to S_${index} = ${row.expectedRoot}: the segment did not reproduce`
            )
          row.status = 'pass'
          checks.pass(
            `S_${index} ${rerun.root} reproduced in ${(rerun.durationMs / 1000).toFixed(1)} s`
          )
        } catch (error) {
          throw error instanceof VerifyError && !error.message.startsWith(`segment ${index}`)
            ? new VerifyError(error.verdict, `segment ${index}: ${error.message}`, error.detail)
            : error
        } finally {
          if (prev !== undefined) await rm(prev.dir, { recursive: true, force: true })
        }
      }
    }
  )
  return {
    downloaded,
    reason: `${describeSpotCheck(report.segments)}: each reproduced its state root; the download is state ${segments}'s outputs: root ${downloaded.root}`
  }
}

/** The model is run N's /out restricted to build.outputs: state N, fetched, must give the download's root. */
async function checkFinalState(
  context: SpotCheckContext,
  transcript: VerifiedTranscript,
  downloaded: TreeDigest,
  fetchOptions: Parameters<typeof fetchState>[2]
): Promise<void> {
  const { ledger } = context.attestation
  const last = transcript.segments
  const state = await fetchState(transcript, last, fetchOptions)
  try {
    const outputs = await collectOutputs(state.dir, ledger.build.outputs).catch(error => {
      throw error instanceof VerifyError
        ? mismatch(`state ${last} does not hold the model's declared outputs: ${error.message}`)
        : error
    })
    if (outputs.root !== downloaded.root) {
      context.report.diff = diffManifests(outputs.manifest, downloaded.manifest)
      throw mismatch(
        `the download is not state ${last}'s outputs: state ${last} restricted to build.outputs has root ${outputs.root}, the download ${downloaded.root}`
      )
    }
    context.checks.pass(
      `state ${last} has root ${state.digest.root}; its outputs are the download (${outputs.root})`
    )
  } finally {
    await rm(state.dir, { recursive: true, force: true })
  }
}

/** `3 of 8 segments re-run (2, 5, 7)`, and the escape chances: the report's words. */
export function describeSpotCheck(segments: NonNullable<Report['segments']>): string {
  const { indices, total } = segments
  return `${indices.length} of ${total} segments re-run (${indices.join(', ')})`
}

/** `a transcript with 1 forged segment escapes with probability 62.5 %, with ⌈N/10⌉ = 1 …`. */
export function describeEscape(segments: NonNullable<Report['segments']>): string {
  const [one, tenth] = segments.escape
  return (
    `a transcript with ${one.forged} forged segment escapes with probability ${formatPercent(one.probability)}, ` +
    `with ⌈N/10⌉ = ${tenth.forged} forged ${formatPercent(tenth.probability)}`
  )
}
