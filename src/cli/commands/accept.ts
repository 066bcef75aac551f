import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Command } from 'commander'
import { messageOf } from '../../errors.js'
import type { Fetched } from '../../attest/accept.js'
import { verifyModel } from '../../verify/pipeline.js'
import {
  collect,
  parseThreshold,
  readInputFile,
  readPublicKeys,
  readTrust,
  UsageError,
  withTrustOptions,
  type TrustOptions
} from '../io.js'
import type { CliContext } from '../context.js'
import { stderrReporter } from '../render.js'
import { outputReport } from '../report-output.js'
import {
  readLogRequirement,
  readProof,
  withLogProofOptions,
  type LogProofOptions
} from '../log-io.js'

interface AcceptOptions extends TrustOptions, LogProofOptions {
  sba: string
  model: string
  rebuildAttestation: string[]
  rebuilderKey: string[]
  rebuilderThreshold: string
  rebuildLogProof: string[]
  expect?: string
  report?: string
  json?: boolean
}

export function registerAccept(program: Command, context: CliContext): void {
  withLogProofOptions(withTrustOptions(program.command('accept')))
    .description(
      'Accept a model without rebuilding it: the SBA verifies and k distinct trusted rebuilders attest its root (rebuild attestations, docs/protocol.md section 8).'
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
    .option(
      '--rebuild-log-proof <file|url>',
      'with --log-key: the .tlog-proof of each --rebuild-attestation, in the same order; repeatable',
      collect,
      []
    )
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
      const log = await readLogRequirement(options)
      const proofs = options.rebuildLogProof
      if (log === undefined && proofs.length > 0) {
        throw new UsageError('--rebuild-log-proof needs --log-key')
      }
      if (log !== undefined && proofs.length !== options.rebuildAttestation.length) {
        throw new UsageError(
          `--log-key is set, so each --rebuild-attestation needs its --rebuild-log-proof (same order): got ${proofs.length} for ${options.rebuildAttestation.length}`
        )
      }
      const candidates = await Promise.all(
        options.rebuildAttestation.map(async (file, i) => ({
          source: file,
          attestation: { bytes: readInputFile(file, 'rebuild attestation') },
          ...(log === undefined ? {} : { logProof: await fetchProof(proofs[i]) })
        }))
      )
      const workDir = await mkdtemp(path.join(os.tmpdir(), 'verify-model-'))
      context.scope?.track(workDir)
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
            log,
            rebuilds: { candidates, policy: { trustedKeys: rebuilderKeys, threshold } }
          },
          { run: context.run, reporter }
        )
        reporter.end()
        await outputReport(context, report, options)
      } finally {
        reporter.end()
        await rm(workDir, { recursive: true, force: true })
      }
    })
}

/** A proof that cannot be downloaded is recorded against its attestation, not thrown. */
async function fetchProof(location: string): Promise<Fetched> {
  try {
    return { bytes: await readProof(location) }
  } catch (error) {
    if (error instanceof UsageError) throw error
    return { error: messageOf(error) }
  }
}
