import { mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Command } from 'commander'
import { removeBuildTree } from '../../reproduce/cleanup.js'
import { verifyAttestation } from '../../protocol/attestation.js'
import { parseStrictJson } from '../../protocol/strict-json.js'
import { parseStatement, type Ledger } from '../../protocol/ledger.js'
import { reproduce } from '../../reproduce/index.js'
import {
  printJson,
  readInputFile,
  readTrust,
  UsageError,
  withTrustOptions,
  type TrustOptions
} from '../io.js'
import type { CliContext } from '../main.js'
import { stderrReporter } from '../render.js'

interface BuildOptions extends TrustOptions {
  dataset?: string
  out: string
  allowNetwork?: boolean
  allowGpu?: boolean
  json?: boolean
}

export function registerBuild(program: Command, context: CliContext): void {
  withTrustOptions(program.command('build'))
    .description(
      'Run the build of a statement or SBA under the container contract and write its outputs (publishers produce their weights with this).'
    )
    .argument(
      '<sba-or-statement>',
      'an SBA (its signature is verified first) or an unsigned statement'
    )
    .option('--dataset <dir>', "the dataset directory (default: download the ledger's dataset.uri)")
    .option('--out <dir>', 'where to write the outputs (must not exist yet)', 'out')
    .option('--allow-network', "allow network when the ledger asks for 'bridge'")
    .option('--allow-gpu', "allow GPU devices and drivers when the ledger asks for 'gpus: all'")
    .option('--json', 'machine-readable output')
    .action(async (file: string, options: BuildOptions) => {
      const ledger = ledgerOf(readInputFile(file, 'SBA or statement'), options)
      const reporter = stderrReporter(context.io)
      const workDir = await mkdtemp(path.join(os.tmpdir(), 'verify-model-build-'))
      context.scope?.track(workDir)
      try {
        const result = await reproduce(
          ledger,
          {
            workDir,
            datasetDir: options.dataset,
            allowNetwork: options.allowNetwork === true,
            allowGpu: options.allowGpu === true,
            runId: context.scope?.id,
            keepOutputsIn: path.resolve(options.out),
            onPhase: phase => reporter.phase(phase),
            onLog: chunk => reporter.buildLog(chunk)
          },
          { run: context.run }
        )
        if (options.json)
          printJson(context.io, {
            root: result.outputs.root,
            manifest: result.outputs.manifest,
            out: options.out
          })
        else context.io.stdout(`${result.outputs.root}\n`)
      } finally {
        reporter.end()
        await removeBuildTree(workDir, context.run)
      }
    })
}

function ledgerOf(bytes: Buffer, options: BuildOptions): Ledger {
  if (!looksLikeEnvelope(bytes)) {
    if (options.publicKey.length > 0)
      throw new UsageError('--public-key was given but the file is a statement, not an SBA')
    return parseStatement(bytes)
  }
  if (options.publicKey.length === 0)
    throw new UsageError('an SBA needs --public-key to verify its signature before building')
  const { keys, threshold } = readTrust(options)
  return verifyAttestation(bytes, keys, threshold).ledger
}

/** A DSSE envelope has a top-level payloadType; an in-toto statement has _type. */
function looksLikeEnvelope(bytes: Buffer): boolean {
  const document = parseStrictJson(bytes, 'input')
  return typeof document === 'object' && document !== null && 'payloadType' in document
}
