import { lstatSync } from 'node:fs'
import path from 'node:path'
import { mismatch, toVerifyError, unverifiable, type Verdict } from '../errors.js'
import type { Run } from '../exec.js'
import type { PublicKey } from '../protocol/keys.js'
import { verifyAttestation, type VerifiedAttestation } from '../protocol/attestation.js'
import { computeCapability } from '../protocol/capability.js'
import type { Ledger } from '../protocol/ledger.js'
import { treeSha256 } from '../digest/tree.js'
import type { HashProgress, TreeDigest } from '../digest/types.js'
import { reproduce, type ReproduceResult } from '../reproduce/index.js'
import { diffManifests } from '../compare/manifest-diff.js'
import { explainMismatchLines } from '../compare/explain.js'
import {
  REPORT_SCHEMA_VERSION,
  shortDigest,
  UNPINNED_ISA_NOTE,
  type Check,
  type Report
} from './report.js'
import { verifyLogProof, type LogPolicy } from '../tlog/verify.js'

export type Mode = Report['mode']

/** The phases a run goes through, in order; the action shows each as a log group. */
export type Phase =
  | 'fetch'
  | 'signature'
  | 'log'
  | 'source'
  | 'dependencies'
  | 'dataset'
  | 'image'
  | 'build'
  | 'outputs'
  | 'hash'
  | 'compare'

export interface VerifyRequest {
  mode: Mode
  sba: Uint8Array
  trustedKeys: PublicKey[]
  threshold: number
  /** The downloaded model: a file or a directory. Required in verify and check modes. */
  model?: string
  expectedCapability?: string
  datasetDir?: string
  allowNetwork: boolean
  timeoutCapSeconds?: number
  /** The build container's memory limit and the cap on what it may leave in /out (bytes). */
  memoryBytes?: number
  maxOutputBytes?: number
  /** Staging area; the reproduced outputs are kept in `<workDir>/reproduced`. */
  workDir: string
  /** Set when a log proof is required (PROTOCOL.md section 7): every mode checks it. */
  log?: { proof: Uint8Array; policy: LogPolicy }
}

export interface Reporter {
  phase(name: Phase): void
  info(line: string): void
  buildLog(chunk: Buffer): void
  hashProgress(what: string, progress: HashProgress): void
}

export interface VerifyDeps {
  run: Run
  reporter: Reporter
  /** Supplies the dataset directory when the request has none (the action's cache). */
  resolveDataset?: (ledger: Ledger) => Promise<string | undefined>
}

/**
 * The whole protocol, shared by the CLI and the action: signature → reproduction → comparison.
 * Never throws for a verification failure: every outcome is a Report with its verdict.
 */
export async function verifyModel(request: VerifyRequest, deps: VerifyDeps): Promise<Report> {
  const tracker = new CheckTracker(deps.reporter)
  const report: Report = {
    schemaVersion: REPORT_SCHEMA_VERSION,
    mode: request.mode,
    result: 'invalid',
    reason: '',
    checks: tracker.checks
  }
  try {
    const outcome = await runProtocol(request, deps, tracker, report)
    report.result = outcome.result
    report.reason = outcome.reason
    tracker.clear()
  } catch (error) {
    const failure = toVerifyError(error)
    tracker.fail(failure.message)
    report.result = failure.verdict
    report.reason = failure.message
    if (failure.detail !== undefined) report.detail = failure.detail
    delete report.capability
  }
  return report
}

async function runProtocol(
  request: VerifyRequest,
  deps: VerifyDeps,
  tracker: CheckTracker,
  report: Report
): Promise<{ result: Verdict; reason: string }> {
  tracker.start('signature')
  const attestation = verifyAttestation(request.sba, request.trustedKeys, request.threshold)
  report.attestationDigest = attestation.attestationDigest
  report.keyIds = attestation.keyIds
  describeLedger(report, attestation.ledger)
  tracker.pass(
    `${attestation.keyIds.length} of ${request.trustedKeys.length} trusted key(s) signed (threshold ${request.threshold}): ${attestation.keyIds.map(shortDigest).join(', ')}`
  )
  if (request.log) checkLogProof(request.log, attestation, tracker, report)

  if (request.mode === 'check') return checkCapability(request, deps, tracker, report, attestation)

  const reproduced = await reproduce(
    attestation.ledger,
    {
      workDir: request.workDir,
      datasetDir: request.datasetDir,
      resolveDataset: deps.resolveDataset,
      allowNetwork: request.allowNetwork,
      timeoutCapSeconds: request.timeoutCapSeconds,
      memoryBytes: request.memoryBytes,
      maxOutputBytes: request.maxOutputBytes,
      keepOutputsIn: path.join(request.workDir, 'reproduced'),
      onPhase: (phase, detail) => {
        tracker.start(phase)
        if (detail) deps.reporter.info(detail)
      },
      onLog: chunk => deps.reporter.buildLog(chunk),
      onHashProgress: progress => deps.reporter.hashProgress('outputs', progress)
    },
    { run: deps.run }
  )
  recordReproduction(report, tracker, reproduced, attestation.ledger)

  if (request.mode === 'reproduce') {
    report.capability = checkExpected(
      report,
      request,
      capabilityOf(attestation, reproduced.outputs.root)
    )
    return { result: 'reproduced', reason: `the build reproduced: root ${reproduced.outputs.root}` }
  }

  tracker.start('hash')
  const model = requiredModel(request)
  const downloaded = await hashModel(model, deps, tracker, report, attestation.ledger)
  tracker.start('compare')
  if (downloaded.root !== reproduced.outputs.root) {
    report.diff = diffManifests(reproduced.outputs.manifest, downloaded.manifest)
    report.explanations = await explainMismatchLines(reproduced.outDir, model, report.diff)
    const { added, removed, changed } = report.diff
    throw mismatch(
      `the download differs from the rebuild: ${changed.length} changed, ${added.length} added, ${removed.length} removed file(s) (reproduced ${shortDigest(reproduced.outputs.root)}, downloaded ${shortDigest(downloaded.root)})`
    )
  }
  const capability = checkExpected(report, request, capabilityOf(attestation, downloaded.root))
  tracker.pass(`download equals rebuild: ${downloaded.root}`)
  report.capability = capability
  return { result: 'verified', reason: `the download equals the rebuild: root ${downloaded.root}` }
}

async function checkCapability(
  request: VerifyRequest,
  deps: VerifyDeps,
  tracker: CheckTracker,
  report: Report,
  attestation: VerifiedAttestation
): Promise<{ result: Verdict; reason: string }> {
  tracker.start('hash')
  const model = requiredModel(request)
  const downloaded = await hashModel(model, deps, tracker, report, attestation.ledger)
  tracker.start('compare')
  const capability = checkExpected(report, request, capabilityOf(attestation, downloaded.root))
  tracker.pass(`capability matches: ${capability}`)
  report.capability = capability
  return { result: 'verified', reason: `the download's capability equals the expected one` }
}

function checkLogProof(
  log: NonNullable<VerifyRequest['log']>,
  attestation: VerifiedAttestation,
  tracker: CheckTracker,
  report: Report
): void {
  tracker.start('log')
  report.log = verifyLogProof(log.proof, log.policy, {
    attestationDigest: attestation.attestationDigest,
    verifiedKeys: attestation.verifiedKeys.map(key => key.raw)
  })
  const { index, origin, treeSize, witnesses } = report.log
  tracker.pass(
    `entry ${index} of ${treeSize} in ${origin}; ${witnesses.length} witness(es) cosigned (threshold ${log.policy.witnessThreshold})`
  )
}

/** An expected capability, when given, binds every mode: a different one is a mismatch. */
function checkExpected(report: Report, request: VerifyRequest, capability: string): string {
  if (request.expectedCapability === undefined) return capability
  report.expectedCapability = request.expectedCapability
  if (capability !== request.expectedCapability) {
    throw mismatch(
      `expected-capability: the ${request.mode === 'reproduce' ? 'rebuilt' : 'downloaded'} model's capability ${capability} differs from the expected ${request.expectedCapability}`
    )
  }
  return capability
}

/** Verify and check compare with the downloaded model; the CLI and the action always give it. */
function requiredModel(request: VerifyRequest): string {
  if (request.model === undefined)
    throw unverifiable(`model: mode ${request.mode} needs the downloaded model: give its path`)
  return request.model
}

/** Hashes the downloaded model; the caller has started the 'hash' phase. */
async function hashModel(
  model: string,
  deps: VerifyDeps,
  tracker: CheckTracker,
  report: Report,
  ledger: Ledger
): Promise<TreeDigest> {
  if (!lstatSync(model, { throwIfNoEntry: false })) {
    throw unverifiable(`model: ${model} does not exist: check the download step or the path`)
  }
  const downloaded = await digestModel(model, ledger, progress =>
    deps.reporter.hashProgress('model', progress)
  )
  report.downloaded = downloaded
  tracker.pass(`downloaded model root ${downloaded.root} (${downloaded.manifest.length} file(s))`)
  return downloaded
}

/** PROTOCOL.md section 1: a single file is named by the ledger's one declared output. */
function singleFileName(ledger: Ledger): string | undefined {
  const outputs = ledger.build.outputs
  return outputs?.length === 1 ? outputs[0] : undefined
}

export function digestModel(
  model: string,
  ledger: Ledger,
  onProgress?: (progress: HashProgress) => void
): Promise<TreeDigest> {
  return treeSha256(model, { singleName: singleFileName(ledger), onProgress })
}

export function capabilityOf(attestation: VerifiedAttestation, root: string): string {
  return computeCapability(
    attestation.verifiedKeys.map(key => key.raw),
    attestation.attestationDigest,
    root
  )
}

function describeLedger(report: Report, ledger: Ledger): void {
  report.source = { uri: ledger.source.uri, commit: ledger.source.gitCommit }
  report.image = ledger.environment.reference
  if (ledger.dataset) report.datasetRoot = ledger.dataset.treeSha256
  report.isa = ledger.build.isa ?? null
  if (ledger.build.isa === undefined) report.cpuDependence = UNPINNED_ISA_NOTE
}

function recordReproduction(
  report: Report,
  tracker: CheckTracker,
  reproduced: ReproduceResult,
  ledger: Ledger
): void {
  report.build = {
    exitCode: reproduced.exitCode,
    durationMs: reproduced.durationMs,
    logTail: reproduced.logTail
  }
  report.reproduced = reproduced.outputs
  tracker.detail('source', `commit ${reproduced.commit}`)
  tracker.detail('dependencies', `${ledger.dependencies.length} pinned file(s) match`)
  tracker.detail(
    'dataset',
    reproduced.dataset ? `root ${reproduced.dataset.root}` : 'none declared'
  )
  tracker.detail('image', reproduced.imageReference)
  tracker.detail('build', `exit 0 in ${(reproduced.durationMs / 1000).toFixed(1)} s`)
  tracker.detail(
    'outputs',
    `reproduced root ${reproduced.outputs.root} (${reproduced.outputs.manifest.length} file(s))`
  )
}

/** Builds the report's table of checks from the phases as they start, pass and fail. */
class CheckTracker {
  readonly checks: Check[] = []
  private current: Check | undefined

  constructor(private readonly reporter: Reporter) {}

  start(phase: Phase): void {
    this.clear()
    this.reporter.phase(phase)
    this.current = { name: phase, status: 'pass', detail: '' }
    this.checks.push(this.current)
  }

  pass(detail: string): void {
    if (this.current) this.current.detail = detail
    this.current = undefined
  }

  fail(detail: string): void {
    if (this.current) {
      this.current.status = 'fail'
      this.current.detail = detail
    }
    this.current = undefined
  }

  /** The current phase ended without a verdict of its own (the next one starts, or all passed). */
  clear(): void {
    this.current = undefined
  }

  detail(phase: Phase, detail: string): void {
    const check = this.checks.find(c => c.name === phase)
    if (check && check.detail === '') check.detail = detail
  }
}
