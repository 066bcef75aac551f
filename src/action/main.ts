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
import { InputError, parseInputs, type ActionInputs, type GetInput } from './inputs.js'
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
}

const MAX_MODEL_FILE_BYTES = 1024 ** 4
const MAX_PROOF_BYTES = 2 * 1024 * 1024

/** The action: parse inputs → fetch → verify → outputs, summary and the step's status. */
export async function runAction(deps: ActionDeps): Promise<void> {
  const { core } = deps
  let inputs: ActionInputs
  let limits: RunnerLimits
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
  const reporter = groupReporter(core)
  let report: Report
  try {
    reporter.phase('fetch')
    const sba = await fetchAttestation(inputs, staging, deps)
    const model = await fetchModel(inputs, staging, deps)
    const log = await fetchLogProof(inputs, staging, deps)
    report = await verifyModel(
      {
        mode: inputs.mode,
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
    report = failureReport(inputs, error)
  } finally {
    reporter.end()
    await removeBuildTree(staging, deps.run)
  }
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

async function fetchAttestation(
  inputs: ActionInputs,
  staging: string,
  deps: ActionDeps
): Promise<Buffer> {
  if (inputs.attestation.kind === 'path') return readFile(inputs.attestation.path)
  const file = path.join(staging, 'attestation.json')
  deps.core.info(`downloading the attestation from ${inputs.attestation.url}`)
  await deps.download(inputs.attestation.url, file, { maxBytes: MAX_ENVELOPE_BYTES })
  return readFile(file)
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

function failureReport(inputs: ActionInputs, error: unknown): Report {
  const failure = toVerifyError(error)
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    mode: inputs.mode,
    result: failure.verdict,
    reason: failure.message,
    checks: [{ name: 'fetch', status: 'fail', detail: failure.message }]
  }
}
