import { lstatSync } from 'node:fs'
import path from 'node:path'
import { invalid, mismatch, toVerifyError, unverifiable, type Verdict } from '../errors.js'
import type { Run } from '../exec.js'
import type { PublicKey } from '../protocol/keys.js'
import { verifyAttestation, type VerifiedAttestation } from '../protocol/attestation.js'
import { computeCapability } from '../protocol/capability.js'
import type { Ledger } from '../protocol/ledger.js'
import { treeOfEntries, treeSha256 } from '../digest/tree.js'
import type { HashProgress, ManifestEntry, TreeDigest } from '../digest/types.js'
import {
  reproduce,
  type PrepareOptions,
  type ReproducePhase,
  type ReproduceResult
} from '../reproduce/index.js'
import type { RandomInt, SegmentSelection } from '../segments/selection.js'
import { describeEscape, spotCheckSegments } from './segments.js'
import { diffManifests } from '../compare/manifest-diff.js'
import { fileSetDifference } from '../compare/file-set.js'
import { listTree } from '../digest/walk.js'
import { clip } from '../text/sanitize.js'
import { explainMismatchLines } from '../compare/explain.js'
import {
  REPORT_SCHEMA_VERSION,
  shortDigest,
  UNPINNED_ISA_NOTE,
  type Check,
  type Report
} from './report.js'
import { acceptRebuilds, type RebuildCandidate, type RebuildPolicy } from '../attest/accept.js'
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
  | 'transcript'
  | 'state'
  | `segment ${number}`
  | 'rebuild-attestations'

/** What a verification hands the reproduction unchanged (documented in reproduce/index.ts). */
type ReproductionSettings = Pick<
  PrepareOptions,
  | 'datasetDir'
  | 'allowNetwork'
  | 'allowGpu'
  | 'runId'
  | 'timeoutCapSeconds'
  | 'memoryBytes'
  | 'maxOutputBytes'
>

export interface VerifyRequest extends ReproductionSettings {
  mode: Mode
  sba: Uint8Array
  trustedKeys: PublicKey[]
  threshold: number
  /** The downloaded model: a file or a directory. Required in verify and check modes. */
  model?: string
  /**
   * The model's files as hashed while they were downloaded (`path`: the name of each in `model`,
   * all of them): their digest is used instead of reading the files again.
   */
  modelHashed?: readonly ManifestEntry[]
  expectedCapability?: string
  /** Mode attested: the rebuild attestations and who may sign them (docs/protocol.md section 8). */
  rebuilds?: { candidates: RebuildCandidate[]; policy: RebuildPolicy }
  /** Staging area; the reproduced outputs are kept in `<workDir>/reproduced`. */
  workDir: string
  /** Keep the reproduced outputs here instead (a path that must not exist yet). */
  outputsDir?: string
  /** A segmented build's signed transcript, and where it came from (stateUri resolves against it). */
  transcript?: { bytes: Uint8Array; location: string }
  /** Which segments to re-run (docs/protocol.md section 9). */
  segments?: SegmentSelection
  /** Set when a log proof is required (docs/protocol.md section 7): every mode checks it. */
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
  /** Draws the segments to re-run (default: node:crypto). */
  random?: RandomInt
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
    report.code = failure.code
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
  if (request.mode === 'attested')
    return acceptAttested(request, deps, tracker, report, attestation)
  const onPhase = (phase: ReproducePhase, detail?: string) => {
    tracker.start(phase)
    if (detail) {
      deps.reporter.info(detail)
      // What the phase worked on, until the reproduction's result says more.
      tracker.describe(detail)
    }
  }
  if (attestation.ledger.build.segments !== undefined || request.transcript !== undefined)
    return spotCheck(request, deps, tracker, report, attestation, onPhase)
  if (request.mode === 'verify')
    await checkFileSet(requiredModel(request), attestation.ledger, tracker)

  const reproduced = await reproduce(
    attestation.ledger,
    {
      workDir: request.workDir,
      datasetDir: request.datasetDir,
      resolveDataset: deps.resolveDataset,
      allowNetwork: request.allowNetwork,
      allowGpu: request.allowGpu,
      runId: request.runId,
      timeoutCapSeconds: request.timeoutCapSeconds,
      memoryBytes: request.memoryBytes,
      maxOutputBytes: request.maxOutputBytes,
      keepOutputsIn: request.outputsDir ?? path.join(request.workDir, 'reproduced'),
      onPhase,
      onLog: chunk => deps.reporter.buildLog(chunk),
      onInfo: line => deps.reporter.info(line),
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
  const downloaded = await hashModel(model, request, deps, tracker, report, attestation.ledger)
  tracker.start('compare')
  if (downloaded.root !== reproduced.outputs.root) {
    report.diff = diffManifests(reproduced.outputs.manifest, downloaded.manifest)
    report.explanations = await explainMismatchLines(reproduced.outDir, model, report.diff)
    const { added, removed, changed } = report.diff
    throw mismatch(
      `the download differs from the rebuild: ${changed.length} changed, ${added.length} added, ${removed.length} removed file(s) (reproduced ${shortDigest(reproduced.outputs.root)}, downloaded ${shortDigest(downloaded.root)})`,
      undefined,
      { code: 'ROOT_MISMATCH' }
    )
  }
  const capability = checkExpected(report, request, capabilityOf(attestation, downloaded.root))
  tracker.pass('the download root equals the reproduced root')
  report.capability = capability
  return { result: 'verified', reason: `the download equals the rebuild: root ${downloaded.root}` }
}

/** A segmented build (docs/protocol.md section 9): the transcript, state N and k re-run segments. */
async function spotCheck(
  request: VerifyRequest,
  deps: VerifyDeps,
  tracker: CheckTracker,
  report: Report,
  attestation: VerifiedAttestation,
  onPhase: (phase: ReproducePhase, detail?: string) => void
): Promise<{ result: Verdict; reason: string }> {
  if (request.mode !== 'verify')
    throw unverifiable(
      `mode ${request.mode}: a segmented build is spot-checked against the download: use mode verify with the model, transcript and segments`
    )
  const model = requiredModel(request)
  const { downloaded, reason } = await spotCheckSegments({
    request,
    deps,
    attestation,
    hashDownload: () => {
      tracker.start('hash')
      return hashModel(model, request, deps, tracker, report, attestation.ledger)
    },
    report,
    checks: tracker,
    onPhase
  })
  tracker.start('compare')
  const capability = checkExpected(report, request, capabilityOf(attestation, downloaded.root))
  tracker.pass(`${reason}; ${describeEscape(report.segments!)}`)
  report.capability = capability
  return { result: 'verified', reason }
}

async function checkCapability(
  request: VerifyRequest,
  deps: VerifyDeps,
  tracker: CheckTracker,
  report: Report,
  attestation: VerifiedAttestation
): Promise<{ result: Verdict; reason: string }> {
  const downloaded = await hashDownload(request, deps, tracker, report, attestation)
  tracker.start('compare')
  const capability = checkExpected(report, request, capabilityOf(attestation, downloaded.root))
  tracker.pass(`capability matches: ${capability}`)
  report.capability = capability
  return { result: 'verified', reason: `the download's capability equals the expected one` }
}

/** A download whose file names cannot be the declared outputs is a mismatch without a build. */
async function checkFileSet(model: string, ledger: Ledger, tracker: CheckTracker): Promise<void> {
  const outputs = ledger.build.outputs
  if (outputs === undefined || !lstatSync(model, { throwIfNoEntry: false })) return
  const files = await listTree(model, { singleName: singleFileName(ledger) })
  const difference = fileSetDifference(
    files.map(file => file.name),
    outputs
  )
  if (difference === undefined) return
  tracker.start('compare')
  const list = (names: string[]) => names.map(name => `'${clip(name)}'`).join(', ')
  const parts = [
    difference.unexpected.length > 0 &&
      `${list(difference.unexpected)} ${difference.unexpected.length === 1 ? 'is' : 'are'} not under any declared output`,
    difference.missing.length > 0 && `declared output(s) ${list(difference.missing)} missing`
  ].filter(Boolean)
  throw mismatch(
    `model: the download's files cannot equal the declared outputs (${outputs.map(o => `'${clip(o)}'`).join(', ')}): ${parts.join('; ')}; nothing was built`,
    undefined,
    { code: 'FILE_SET_MISMATCH' }
  )
}

/** docs/protocol.md section 8: no rebuild here; k trusted rebuilders vouch for the download's root. */
async function acceptAttested(
  request: VerifyRequest,
  deps: VerifyDeps,
  tracker: CheckTracker,
  report: Report,
  attestation: VerifiedAttestation
): Promise<{ result: Verdict; reason: string }> {
  const downloaded = await hashDownload(request, deps, tracker, report, attestation)
  tracker.start('rebuild-attestations')
  if (request.rebuilds === undefined) {
    throw invalid(
      'rebuild attestations: mode attested needs the attestations and the rebuilder keys'
    )
  }
  const { candidates } = request.rebuilds
  // The log that the SBA's proof is checked against binds the rebuilders' attestations too.
  const policy = { ...request.rebuilds.policy, log: request.log?.policy }
  const acceptance = acceptRebuilds(
    candidates,
    { modelRoot: downloaded.root, attestationDigest: attestation.attestationDigest },
    policy
  )
  report.rebuildAttestations = acceptance.verdicts
  report.rebuilderThreshold = policy.threshold
  if (acceptance.failure) throw acceptance.failure
  const keyIds = acceptance.countedKeys.map(k => shortDigest(k.keyId))
  const attested = `${keyIds.length} distinct trusted rebuilder key(s) attest root ${downloaded.root} (threshold ${policy.threshold})`
  tracker.pass(`${attested}: ${keyIds.join(', ')}`)
  report.capability = checkExpected(report, request, capabilityOf(attestation, downloaded.root))
  return { result: 'verified', reason: attested }
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

/** The 'hash' phase of the modes that rebuild nothing: the download's tree digest. */
async function hashDownload(
  request: VerifyRequest,
  deps: VerifyDeps,
  tracker: CheckTracker,
  report: Report,
  attestation: VerifiedAttestation
): Promise<TreeDigest> {
  tracker.start('hash')
  return hashModel(requiredModel(request), request, deps, tracker, report, attestation.ledger)
}

/** An expected capability, when given, binds every mode: a different one is a mismatch. */
function checkExpected(report: Report, request: VerifyRequest, capability: string): string {
  if (request.expectedCapability === undefined) return capability
  report.expectedCapability = request.expectedCapability
  if (capability !== request.expectedCapability) {
    throw mismatch(
      `expected-capability: the ${request.mode === 'reproduce' ? 'rebuilt' : 'downloaded'} model's capability ${capability} differs from the expected ${request.expectedCapability}`,
      undefined,
      { code: 'CAPABILITY_MISMATCH' }
    )
  }
  return capability
}

/** Verify and check compare with the downloaded model; the CLI and the action always give it. */
function requiredModel(request: VerifyRequest): string {
  if (request.model === undefined)
    throw unverifiable(
      `model: mode ${request.mode} needs the downloaded model: give its path`,
      undefined,
      { code: 'MODEL_MISSING' }
    )
  return request.model
}

/** Hashes the downloaded model; the caller has started the 'hash' phase. */
async function hashModel(
  model: string,
  request: VerifyRequest,
  deps: VerifyDeps,
  tracker: CheckTracker,
  report: Report,
  ledger: Ledger
): Promise<TreeDigest> {
  if (!lstatSync(model, { throwIfNoEntry: false })) {
    throw unverifiable(
      `model: ${model} does not exist: check the download step or the path`,
      undefined,
      { code: 'MODEL_MISSING' }
    )
  }
  const downloaded = await digestModel(
    model,
    ledger,
    progress => deps.reporter.hashProgress('model', progress),
    request.modelHashed
  )
  report.downloaded = downloaded
  tracker.pass(`${downloaded.manifest.length} file(s) hashed, root ${shortDigest(downloaded.root)}`)
  return downloaded
}

/** docs/protocol.md section 1: a single file is named by the ledger's one declared output. */
function singleFileName(ledger: Ledger): string | undefined {
  const outputs = ledger.build.outputs
  return outputs?.length === 1 ? outputs[0] : undefined
}

/**
 * The model's tree digest: of `hashed` when its files were hashed as they were downloaded (the
 * same manifest and root as reading them again), else by hashing `model`.
 */
export async function digestModel(
  model: string,
  ledger: Ledger,
  onProgress?: (progress: HashProgress) => void,
  hashed?: readonly ManifestEntry[]
): Promise<TreeDigest> {
  const singleName = singleFileName(ledger)
  if (hashed === undefined) return treeSha256(model, { singleName, onProgress })
  const single = hashed.length === 1 && lstatSync(model).isFile()
  return treeOfEntries(single ? [{ ...hashed[0], path: singleName ?? hashed[0].path }] : hashed)
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
  report.outputsDir = reproduced.outDir
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
    `${reproduced.outputs.manifest.length} file(s) hashed, root ${shortDigest(reproduced.outputs.root)}`
  )
}

/** Builds the report's table of checks from the phases as they start, pass and fail. */
class CheckTracker {
  readonly checks: Check[] = []
  private current: Check | undefined
  private timed: { check: Check; started: number } | undefined

  constructor(
    private readonly reporter: Reporter,
    private readonly now: () => number = Date.now
  ) {}

  start(phase: Phase): void {
    this.clear()
    this.reporter.phase(phase)
    this.current = { name: phase, status: 'pass', detail: '' }
    this.checks.push(this.current)
    this.timed = { check: this.current, started: this.now() }
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
    this.stopClock()
  }

  /** The current phase ended without a verdict of its own (the next one starts, or all passed). */
  clear(): void {
    this.current = undefined
    this.stopClock()
  }

  /** A phase's time runs until the next one starts or the run ends. */
  private stopClock(): void {
    if (this.timed) this.timed.check.durationMs = this.now() - this.timed.started
    this.timed = undefined
  }

  describe(detail: string): void {
    if (this.current) this.current.detail = detail
  }

  /** The result of a phase that passed, known once the reproduction returned. */
  detail(phase: Phase, detail: string): void {
    const check = this.checks.find(c => c.name === phase)
    if (check && check.status === 'pass') check.detail = detail
  }
}
