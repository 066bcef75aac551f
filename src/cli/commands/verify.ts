import { mkdtemp, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Command } from 'commander'
import { removeBuildTree } from '../../reproduce/cleanup.js'
import { isPassing } from '../../errors.js'
import { verifyModel } from '../../verify/pipeline.js'
import {
  printJson,
  readInputFile,
  readTrust,
  UsageError,
  withTrustOptions,
  type TrustOptions
} from '../io.js'
import { EXIT_FAILED, EXIT_PASS, type CliContext } from '../main.js'
import { renderReportText, stderrReporter } from '../render.js'
import { readLogRequirement, withLogProofOptions, type LogProofOptions } from '../log-io.js'

interface VerifyOptions extends TrustOptions, LogProofOptions {
  sba: string
  model?: string
  reproduceOnly?: boolean
  dataset?: string
  expect?: string
  allowNetwork?: boolean
  report?: string
  json?: boolean
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
    .option('--report <file>', 'write the JSON report here')
    .option('--json', 'print the JSON report on stdout')
    .action(async (options: VerifyOptions) => {
      if (Boolean(options.model) === Boolean(options.reproduceOnly)) {
        throw new UsageError('give exactly one of --model PATH and --reproduce-only')
      }
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
        log: await readLogRequirement(options)
      }
      const workDir = await mkdtemp(path.join(os.tmpdir(), 'verify-model-'))
      const reporter = stderrReporter(context.io)
      try {
        const report = await verifyModel({ ...request, workDir }, { run: context.run, reporter })
        reporter.end()
        if (options.report) await writeFile(options.report, JSON.stringify(report, null, 2) + '\n')
        if (options.json) printJson(context.io, report)
        else context.io.stdout(renderReportText(report))
        context.exitCode = isPassing(report.result) ? EXIT_PASS : EXIT_FAILED
      } finally {
        reporter.end()
        await removeBuildTree(workDir, context.run)
      }
    })
}
