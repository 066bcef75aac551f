import { mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { removeBuildTree } from '../reproduce/cleanup.js'
import { RunScope } from '../reproduce/run-scope.js'
import { STATE_DIRS, STATE_RUN_ID } from './state.js'
import { isPassing, messageOf, toVerifyError, unverifiable } from '../errors.js'
import { MAX_ENVELOPE_BYTES } from '../protocol/envelope.js'
import type { Run } from '../exec.js'
import type { ManifestEntry } from '../digest/types.js'
import type { DownloadFn } from '../download.js'
import { verifyModel } from '../verify/pipeline.js'
import { REPORT_SCHEMA_VERSION, type Report } from '../verify/report.js'
import { resolveCachedDataset, type CacheApi } from './dataset-cache.js'
import {
  InputError,
  parseInputs,
  secretLines,
  type ActionInputs,
  type GetInput,
  type Source
} from './inputs.js'
import { planSegments } from './plan.js'
import { formatPercent, type SegmentSelection } from '../segments/selection.js'
import { fetchRebuildCandidates, writeRebuildAttestation } from './rebuild-attestations.js'
import { runnerLimits, type RunnerLimits } from './runner-limits.js'
import { renderSummary } from './summary.js'
import { writeOutputs } from './outputs.js'
import { groupReporter } from './log.js'
import type { LogPolicy } from '../tlog/verify.js'

/** The slice of @actions/core the action uses, injected so tests need no module mocks. */
export interface ActionCore {
  getInput: GetInput
  setOutput(name: string, value: string): void
  setFailed(message: string): void
  /** Masks a value in the rest of the job's log. */
  setSecret(secret: string): void
  error(message: string, properties?: { title?: string }): void
  warning(message: string): void
  info(message: string): void
  startGroup(name: string): void
  endGroup(): void
  writeSummary(html: string): Promise<void>
  /** For the `post:` step (GITHUB_STATE); absent in tests that need none. */
  saveState?(name: string, value: string): void
}

export interface ActionDeps {
  core: ActionCore
  run: Run
  download: DownloadFn
  cache: CacheApi
  env: NodeJS.ProcessEnv
  /**
   * Calls `handler` on SIGINT or SIGTERM (what the runner sends on cancel); the process ends
   * once it resolves. Returns the unsubscribe. Absent: signals are not handled.
   */
  onTermination?: (handler: (signal: NodeJS.Signals) => Promise<void>) => () => void
  /** The clock of `timeVerified` in rebuild attestations (default: the system clock). */
  now?: () => Date
}

const MAX_MODEL_FILE_BYTES = 1024 ** 4
const MAX_PROOF_BYTES = 2 * 1024 * 1024

/** The action: parse inputs → fetch → verify → outputs, summary and the step's status. */
export async function runAction(deps: ActionDeps): Promise<void> {
  const { core } = deps
  let inputs: ActionInputs
  let limits: RunnerLimits
  // Before anything can print: the signing key must never reach the log.
  for (const line of secretLines(core.getInput('attest-key'))) core.setSecret(line)
  try {
    inputs = parseInputs(core.getInput, deps.env)
    limits = runnerLimits(deps.env)
  } catch (error) {
    if (error instanceof InputError) {
      // Nothing was verified: callers gating on the result output see a failing one.
      core.setOutput('result', 'invalid')
      return core.setFailed(error.message)
    }
    throw error
  }

  await mkdir(inputs.workingDirectory, { recursive: true })
  const staging = await mkdtemp(path.join(inputs.workingDirectory, 'verify-model-'))
  if (inputs.mode === 'plan') return plan(inputs, staging, deps)
  const mode = inputs.mode
  const scope = new RunScope(
    `${deps.env.GITHUB_RUN_ID ?? 'local'}-${deps.env.GITHUB_RUN_ATTEMPT ?? '1'}-${randomBytes(6).toString('hex')}`
  )
  const dirs: string[] = []
  const hold = (dir: string) => {
    scope.track(dir)
    dirs.push(dir)
    core.saveState?.(STATE_DIRS, JSON.stringify(dirs))
  }
  core.saveState?.(STATE_RUN_ID, scope.id)
  hold(staging)
  const reporter = groupReporter(core)
  // A cancelled run removes its container and directories and reports the failing verdict
  // itself; the ordinary path then writes nothing more.
  let cancelling: Promise<void> | undefined
  let finishing = false
  const stopListening = deps.onTermination?.(signal => {
    if (finishing || cancelling) return cancelling ?? Promise.resolve()
    cancelling = (async () => {
      reporter.end()
      await scope.removeAll(deps.run)
      await finish(cancelledReport(mode, signal), inputs, deps)
    })()
    return cancelling
  })
  let report: Report
  try {
    reporter.phase('fetch')
    const sba = await fetchAttestation(inputs, staging, deps)
    const { model, modelHashed } = await fetchModel(inputs, staging, deps)
    const transcript = inputs.transcript && {
      bytes: await fetchDocument(inputs.transcript, 'transcript', staging, deps),
      location: inputs.transcript.kind === 'path' ? inputs.transcript.path : inputs.transcript.url
    }
    const log = await fetchLogProof(inputs, staging, deps)
    report = await verifyModel(
      {
        mode,
        transcript,
        segments: inputs.segments,
        sba,
        trustedKeys: inputs.publicKeys,
        threshold: inputs.threshold,
        model,
        modelHashed,
        expectedCapability: inputs.expectedCapability,
        datasetDir: inputs.dataset,
        allowNetwork: inputs.allowNetwork,
        allowGpu: inputs.allowGpu,
        runId: scope.id,
        timeoutCapSeconds: inputs.timeoutCapSeconds,
        memoryBytes: limits.memoryBytes,
        maxOutputBytes: limits.maxOutputBytes,
        workDir: staging,
        outputsDir: inputs.outputsDir,
        rebuilds: inputs.rebuilds && {
          candidates: await fetchRebuildCandidates(
            inputs.rebuilds,
            staging,
            deps.download,
            core.info
          ),
          policy: { trustedKeys: inputs.rebuilds.keys, threshold: inputs.rebuilds.threshold }
        },
        log
      },
      {
        run: deps.run,
        reporter,
        resolveDataset:
          inputs.cache && !inputs.dataset
            ? ledger =>
                resolveCachedDataset(ledger, {
                  cache: deps.cache,
                  workDir: staging,
                  warn: core.warning,
                  info: core.info,
                  timeoutMs: limits.cacheTimeoutMs,
                  hold
                })
            : undefined
      }
    )
  } catch (error) {
    // A failure before the pipeline (fetching the SBA or the model) is still a verdict.
    report = failureReport(mode, error)
  } finally {
    if (!cancelling) reporter.end()
    await scope.removeAll(deps.run)
  }
  if (cancelling) return cancelling
  finishing = true
  stopListening?.()
  const stamp = `${deps.env.GITHUB_RUN_ID ?? process.pid}-${Date.now()}`
  await writeRebuildAttestation(
    report,
    inputs,
    deps.now ?? (() => new Date()),
    `verify-model-rebuild-attestation-${stamp}.json`
  )
  // Outside the try: the outputs are written once, for the one verdict.
  await finish(report, inputs, deps)
}

function cancelledReport(mode: Report['mode'], signal: NodeJS.Signals): Report {
  const reason = `cancelled by ${signal}: the build container and the staging directory were removed`
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    mode,
    result: 'unverifiable',
    reason,
    checks: [{ name: 'cancel', status: 'fail', detail: reason }]
  }
}

async function finish(report: Report, inputs: ActionInputs, deps: ActionDeps): Promise<void> {
  const { core } = deps
  const reportPath = path.join(
    inputs.workingDirectory,
    `verify-model-report-${deps.env.GITHUB_RUN_ID ?? process.pid}-${Date.now()}.json`
  )
  await writeFile(reportPath, JSON.stringify(report, null, 2) + '\n')
  writeOutputs(core.setOutput, report, reportPath)
  if (inputs.outputsDir !== undefined && report.outputsDir === inputs.outputsDir)
    core.setOutput('outputs-dir', inputs.outputsDir)
  if (inputs.showSummary) {
    // The summary only shows the verdict: failing to write it must not change it.
    try {
      await core.writeSummary(renderSummary(report))
    } catch (error) {
      const why = messageOf(error)
      core.warning(`the job summary was not written: ${why}`)
    }
  }
  if (report.cpuDependence) core.warning(report.cpuDependence)
  if (isPassing(report.result)) {
    core.info(`${report.result}: ${report.reason}`)
    if (report.capability) core.info(`capability: ${report.capability}`)
  } else {
    core.error(report.reason, { title: `verify-model: ${report.result}` })
    core.setFailed(`${report.result}: ${report.reason}`)
  }
}

function fetchAttestation(
  inputs: ActionInputs,
  staging: string,
  deps: ActionDeps
): Promise<Buffer> {
  return fetchDocument(inputs.attestation, 'attestation', staging, deps)
}

/** A DSSE envelope given as a path or a URL (the attestation, the transcript). */
async function fetchDocument(
  source: Source,
  name: string,
  staging: string,
  deps: ActionDeps
): Promise<Buffer> {
  if (source.kind === 'path') return readFile(source.path)
  const file = path.join(staging, `${name}.json`)
  deps.core.info(`downloading the ${name} from ${source.url}`)
  await deps.download(source.url, file, { maxBytes: MAX_ENVELOPE_BYTES })
  return readFile(file)
}

/** mode plan: the `segments-matrix` output, or a failed step with the verdict as `result`. */
async function plan(inputs: ActionInputs, staging: string, deps: ActionDeps): Promise<void> {
  const { core } = deps
  try {
    const planned = planSegments({
      sba: await fetchAttestation(inputs, staging, deps),
      transcript:
        inputs.transcript && (await fetchDocument(inputs.transcript, 'transcript', staging, deps)),
      trustedKeys: inputs.publicKeys,
      threshold: inputs.threshold,
      segments: inputs.segments as SegmentSelection
    })
    const chances = planned.escape
      .map(c => `${c.forged} forged: ${formatPercent(c.probability)}`)
      .join(', ')
    core.setOutput('segments-matrix', JSON.stringify(planned.indices))
    core.info(
      `planned ${planned.indices.length} of ${planned.total} segments: ${planned.indices.join(', ')} (escape chance with ${chances})`
    )
  } catch (error) {
    const failure = toVerifyError(error)
    core.setOutput('result', failure.verdict)
    core.error(failure.message, { title: `verify-model: ${failure.verdict}` })
    core.setFailed(`${failure.verdict}: ${failure.message}`)
  } finally {
    await removeBuildTree(staging, deps.run)
  }
}

/** The log proof the inputs require, read or downloaded (a failed download is unverifiable). */
async function fetchLogProof(
  inputs: ActionInputs,
  staging: string,
  deps: ActionDeps
): Promise<{ proof: Buffer; policy: LogPolicy } | undefined> {
  if (inputs.log === undefined) return undefined
  const { proof, policy } = inputs.log
  if (proof.kind === 'path') return { proof: await readFile(proof.path), policy }
  const file = path.join(staging, 'log-proof.tlog-proof')
  deps.core.info(`downloading the log proof from ${proof.url}`)
  await deps.download(proof.url, file, { maxBytes: MAX_PROOF_BYTES })
  return { proof: await readFile(file), policy }
}

/** A downloaded single file is the model itself (the single-file rule names it); several make a tree. */
/** The model to compare: a path, or the model-url downloads with their streamed digests. */
async function fetchModel(
  inputs: ActionInputs,
  staging: string,
  deps: ActionDeps
): Promise<{ model?: string; modelHashed?: ManifestEntry[] }> {
  if (inputs.modelUrls.length === 0) return { model: inputs.model }
  const dir = path.join(staging, 'model')
  await mkdir(dir)
  const modelHashed: ManifestEntry[] = []
  for (const { name, url } of inputs.modelUrls) {
    deps.core.info(`downloading ${name} from ${url}`)
    const file = path.join(dir, name)
    const { bytes, sha256 } = await deps.download(url, file, { maxBytes: MAX_MODEL_FILE_BYTES })
    // The digest is of the bytes received; the file must hold all of them.
    const written = (await stat(file)).size
    if (written !== bytes)
      throw unverifiable(`download ${name}: ${bytes} bytes received, ${written} on disk`)
    modelHashed.push({ path: name, size: bytes, sha256 })
  }
  const model = inputs.modelUrls.length === 1 ? path.join(dir, inputs.modelUrls[0].name) : dir
  return { model, modelHashed }
}

function failureReport(mode: Report['mode'], error: unknown): Report {
  const failure = toVerifyError(error)
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    mode,
    result: failure.verdict,
    reason: failure.message,
    checks: [{ name: 'fetch', status: 'fail', detail: failure.message }]
  }
}
