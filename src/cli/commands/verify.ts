import { mkdtemp, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Command } from 'commander'
import { removeBuildTree } from '../../reproduce/cleanup.js'
import { verifyModel } from '../../verify/pipeline.js'
import {
  readInputFile,
  readPrivateKeyFile,
  readTrust,
  UsageError,
  withTrustOptions,
  type TrustOptions
} from '../io.js'
import { parseSegmentSelection, type SegmentSelection } from '../../segments/selection.js'

function segmentSelection(value: string): SegmentSelection {
  try {
    return parseSegmentSelection(value)
  } catch (error) {
    throw new UsageError(`--segments: ${(error as Error).message}`)
  }
}
import type { CliContext } from '../context.js'
import { stderrReporter } from '../render.js'
import { outputReport } from '../report-output.js'
import { resolveVerifierId } from '../../attest/verifier-id.js'
import type { PrivateKey } from '../../protocol/keys.js'
import { rebuildAttestationFor } from '../../verify/rebuild-attestation.js'
import { readLogRequirement, withLogProofOptions, type LogProofOptions } from '../log-io.js'

interface VerifyOptions extends TrustOptions, LogProofOptions {
  sba: string
  model?: string
  reproduceOnly?: boolean
  dataset?: string
  expect?: string
  allowNetwork?: boolean
  allowGpu?: boolean
  report?: string
  json?: boolean
  transcript?: string
  segments?: string
  attestKey?: string
  verifierId?: string
  attestationOut?: string
}

export function registerVerify(program: Command, context: CliContext): void {
  withLogProofOptions(withTrustOptions(program.command('verify')))
    .description(
      'The whole protocol: signature, reproduction in the pinned image, comparison with the model.'
    )
    .requiredOption('--sba <file>', 'the SBA (DSSE envelope JSON)')
    .option('--model <path>', 'the downloaded model: a file or a directory')
    .option(
      '--reproduce-only',
      'no download to compare: rebuild and emit the capability of the outputs'
    )
    .option('--dataset <dir>', "the dataset directory (default: download the ledger's dataset.uri)")
    .option('--expect <capability>', 'also require this ocap1:… capability')
    .option('--allow-network', "allow network when the ledger asks for 'bridge'")
    .option('--allow-gpu', "allow GPU devices and drivers when the ledger asks for 'gpus: all'")
    .option(
      '--transcript <file>',
      "a segmented build's signed transcript (its stateUri resolves against this file)"
    )
    .option(
      '--segments <k|list>',
      'with --transcript: re-run k random segments, all, or the listed indices (2,5,7; one index as 7,)'
    )
    .option('--report <file>', 'write the JSON report here')
    .option('--json', 'print the JSON report on stdout')
    .option(
      '--attest-key <file>',
      'after a passing rebuild, sign a rebuild attestation (SLSA VSA) with this PKCS#8 PEM key'
    )
    .option(
      '--verifier-id <uri>',
      'URI naming this rebuilder (default: GITHUB_SERVER_URL/GITHUB_WORKFLOW_REF)'
    )
    .option('--attestation-out <file>', 'where the rebuild attestation is written')
    .action(async (options: VerifyOptions) => {
      if (Boolean(options.model) === Boolean(options.reproduceOnly)) {
        throw new UsageError('give exactly one of --model PATH and --reproduce-only')
      }
      if (options.segments !== undefined && options.transcript === undefined)
        throw new UsageError('--segments needs --transcript (the signed state roots)')
      if (options.transcript !== undefined && options.segments === undefined)
        throw new UsageError(
          '--transcript needs --segments: a number k of random segments to re-run, all, or a list of indices'
        )
      const attest = readAttestOptions(options)
      const trust = readTrust(options)
      const request = {
        mode: options.model ? ('verify' as const) : ('reproduce' as const),
        sba: readInputFile(options.sba, 'SBA'),
        trustedKeys: trust.keys,
        threshold: trust.threshold,
        model: options.model,
        expectedCapability: options.expect,
        datasetDir: options.dataset,
        allowNetwork: options.allowNetwork === true,
        allowGpu: options.allowGpu === true,
        runId: context.scope?.id,
        ...(options.transcript === undefined
          ? {}
          : {
              transcript: {
                bytes: readInputFile(options.transcript, 'transcript'),
                location: path.resolve(options.transcript)
              },
              segments: segmentSelection(options.segments as string)
            }),
        log: await readLogRequirement(options)
      }
      const workDir = await mkdtemp(path.join(os.tmpdir(), 'verify-model-'))
      context.scope?.track(workDir)
      const reporter = stderrReporter(context.io)
      try {
        const report = await verifyModel({ ...request, workDir }, { run: context.run, reporter })
        reporter.end()
        const vsa = attest && rebuildAttestationFor(report, { ...attest, now: () => new Date() })
        if (attest && vsa !== undefined) {
          await writeFile(attest.out, vsa)
          report.rebuildAttestation = attest.out
        }
        await outputReport(context, report, options)
      } finally {
        reporter.end()
        await removeBuildTree(workDir, context.run)
      }
    })
}

/** --attest-key, --verifier-id and --attestation-out: checked before any build starts. */
function readAttestOptions(
  options: VerifyOptions
): { key: PrivateKey; verifierId: string; out: string } | undefined {
  if (options.attestKey === undefined) {
    const stray =
      options.verifierId !== undefined
        ? '--verifier-id'
        : options.attestationOut !== undefined
          ? '--attestation-out'
          : undefined
    if (stray) throw new UsageError(`${stray} is only used with --attest-key`)
    return undefined
  }
  if (options.attestationOut === undefined) {
    throw new UsageError(
      '--attest-key needs --attestation-out FILE: where the rebuild attestation is written'
    )
  }
  const key = readPrivateKeyFile(options.attestKey, '--attest-key')
  const resolved = resolveVerifierId(options.verifierId, process.env, '--verifier-id')
  if ('error' in resolved) throw new UsageError(resolved.error)
  return { key, verifierId: resolved.verifierId, out: options.attestationOut }
}
