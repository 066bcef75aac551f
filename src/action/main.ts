import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { removeBuildTree } from '../reproduce/cleanup.js'
import { isPassing, messageOf, toVerifyError } from '../errors.js'
import { MAX_ENVELOPE_BYTES } from '../protocol/envelope.js'
import type { Run } from '../exec.js'
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
}

export interface ActionDeps {
  core: ActionCore
  run: Run
  download: DownloadFn
  cache: CacheApi
  env: NodeJS.ProcessEnv
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
  const reporter = groupReporter(core)
  let report: Report
  try {
    reporter.phase('fetch')
    const sba = await fetchAttestation(inputs, staging, deps)
    const model = await fetchModel(inputs, staging, deps)
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
        expectedCapability: inputs.expectedCapability,
        datasetDir: inputs.dataset,
        allowNetwork: inputs.allowNetwork,
        timeoutCapSeconds: inputs.timeoutCapSeconds,
        memoryBytes: limits.memoryBytes,
        maxOutputBytes: limits.maxOutputBytes,
        workDir: staging,
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
                  timeoutMs: limits.cacheTimeoutMs
                })
            : undefined
      }
    )
  } catch (error) {
    // A failure before the pipeline (fetching the SBA or the model) is still a verdict.
    report = failureReport(mode, error)
  } finally {
    reporter.end()
    await removeBuildTree(staging, deps.run)
  }
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

async function finish(report: Report, inputs: ActionInputs, deps: ActionDeps): Promise<void> {
  const { core } = deps
  const reportPath = path.join(
    inputs.workingDirectory,
    `verify-model-report-${deps.env.GITHUB_RUN_ID ?? process.pid}-${Date.now()}.json`
  )
  await writeFile(reportPath, JSON.stringify(report, null, 2) + '\n')
  writeOutputs(core.setOutput, report, reportPath)
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
async function fetchModel(
  inputs: ActionInputs,
  staging: string,
  deps: ActionDeps
): Promise<string | undefined> {
  if (inputs.modelUrls.length === 0) return inputs.model
  const dir = path.join(staging, 'model')
  await mkdir(dir)
  for (const { name, url } of inputs.modelUrls) {
    deps.core.info(`downloading ${name} from ${url}`)
    await deps.download(url, path.join(dir, name), { maxBytes: MAX_MODEL_FILE_BYTES })
  }
  return inputs.modelUrls.length === 1 ? path.join(dir, inputs.modelUrls[0].name) : dir
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
