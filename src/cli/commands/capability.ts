import type { Command } from 'commander'
import { mismatch } from '../../errors.js'
import { capabilityOf, digestModel } from '../../verify/pipeline.js'
import { printJson, verifySbaFile, withTrustOptions, type TrustOptions } from '../io.js'
import type { CliContext } from '../main.js'
import {
  checkLogProof,
  readLogRequirement,
  withLogProofOptions,
  type LogProofOptions
} from '../log-io.js'

interface CapabilityOptions extends TrustOptions, LogProofOptions {
  sba: string
  model: string
  expect?: string
  json?: boolean
}

export function registerCapability(program: Command, context: CliContext): void {
  withLogProofOptions(withTrustOptions(program.command('capability')))
    .description(
      'Recompute the capability of a model from the SBA and the keys, without rebuilding.'
    )
    .requiredOption('--sba <file>', 'the SBA (DSSE envelope JSON)')
    .requiredOption('--model <path>', 'the model: a file or a directory')
    .option('--expect <capability>', 'exit 1 unless the capability equals this ocap1:… value')
    .option('--json', 'machine-readable output')
    .action(async (options: CapabilityOptions) => {
      const requirement = await readLogRequirement(options)
      const verified = verifySbaFile(options.sba, options)
      const log = requirement && checkLogProof(requirement, verified)
      const model = await digestModel(options.model, verified.ledger)
      const capability = capabilityOf(verified, model.root)
      if (options.expect !== undefined && options.expect !== capability) {
        throw mismatch(`capability ${capability} differs from the expected ${options.expect}`)
      }
      if (options.json) {
        printJson(context.io, {
          capability,
          modelRoot: model.root,
          attestationDigest: verified.attestationDigest,
          keyIds: verified.keyIds,
          ...(log && { log })
        })
      } else {
        context.io.stdout(`${capability}\n`)
      }
    })
}
