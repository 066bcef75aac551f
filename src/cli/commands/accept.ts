import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Command } from 'commander'
import { isPassing } from '../../errors.js'
import { verifyModel } from '../../verify/pipeline.js'
import {
  collect,
  parseThreshold,
  printJson,
  readInputFile,
  readPublicKeys,
  readTrust,
  UsageError,
  withTrustOptions,
  type TrustOptions
} from '../io.js'
import { EXIT_FAILED, EXIT_PASS, type CliContext } from '../main.js'
import { renderReportText, stderrReporter } from '../render.js'

interface AcceptOptions extends TrustOptions {
  sba: string
  model: string
  rebuildAttestation: string[]
  rebuilderKey: string[]
  rebuilderThreshold: string
  expect?: string
  report?: string
  json?: boolean
}

export function registerAccept(program: Command, context: CliContext): void {
  withTrustOptions(program.command('accept'))
    .description(
      'Accept a model without rebuilding it: the SBA verifies and k distinct trusted rebuilders attest its root (rebuild attestations, PROTOCOL.md section 8).'
    )
    .requiredOption('--sba <file>', 'the SBA (DSSE envelope JSON)')
    .requiredOption('--model <path>', 'the downloaded model: a file or a directory')
    .option('--rebuild-attestation <file>', 'a rebuild attestation; repeatable', collect, [])
    .option(
      '--rebuilder-key <key>',
      'trusted rebuilder key: a file, or hex / base64; repeatable',
      collect,
      []
    )
    .option('--rebuilder-threshold <n>', 'distinct trusted rebuilder keys that must attest', '1')
    .option('--expect <capability>', 'also require this ocap1:… capability')
    .option('--report <file>', 'write the JSON report here')
    .option('--json', 'print the JSON report on stdout')
    .action(async (options: AcceptOptions) => {
      if (options.rebuildAttestation.length === 0) {
        throw new UsageError('at least one --rebuild-attestation is required')
      }
      const trust = readTrust(options)
      const rebuilderKeys = readPublicKeys(options.rebuilderKey, '--rebuilder-key')
      const threshold = parseThreshold(options.rebuilderThreshold, '--rebuilder-threshold')
      const distinct = new Set(rebuilderKeys.map(k => k.keyId)).size
      if (threshold > distinct) {
        throw new UsageError(
          `--rebuilder-threshold ${threshold} is more than the ${distinct} distinct --rebuilder-key value(s)`
        )
      }
      const candidates = options.rebuildAttestation.map(file => ({
        source: file,
        attestation: { bytes: readInputFile(file, 'rebuild attestation') }
      }))
      const workDir = await mkdtemp(path.join(os.tmpdir(), 'verify-model-'))
      const reporter = stderrReporter(context.io)
      try {
        const report = await verifyModel(
          {
            mode: 'attested',
            sba: readInputFile(options.sba, 'SBA'),
            trustedKeys: trust.keys,
            threshold: trust.threshold,
            model: options.model,
            expectedCapability: options.expect,
            allowNetwork: false,
            workDir,
            rebuilds: { candidates, policy: { trustedKeys: rebuilderKeys, threshold } }
          },
          { run: context.run, reporter }
        )
        reporter.end()
        if (options.report) await writeFile(options.report, JSON.stringify(report, null, 2) + '\n')
        if (options.json) printJson(context.io, report)
        else context.io.stdout(renderReportText(report))
        context.exitCode = isPassing(report.result) ? EXIT_PASS : EXIT_FAILED
      } finally {
        reporter.end()
        await rm(workDir, { recursive: true, force: true })
      }
    })
}
