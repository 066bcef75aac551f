import type { Command } from 'commander'
import { mismatch } from '../../errors.js'
import { verifyAttestation } from '../../protocol/attestation.js'
import { computeCapability } from '../../protocol/capability.js'
import { digestModel } from '../../verify/pipeline.js'
import { collect, parseThreshold, printJson, readInputFile, readPublicKeys } from '../io.js'
import type { CliContext } from '../main.js'

interface CapabilityOptions {
  sba: string
  publicKey: string[]
  threshold: string
  model: string
  expect?: string
  json?: boolean
}

export function registerCapability(program: Command, context: CliContext): void {
  program
    .command('capability')
    .description(
      'Recompute the capability of a model from the SBA and the keys, without rebuilding.'
    )
    .requiredOption('--sba <file>', 'the SBA (DSSE envelope JSON)')
    .option(
      '--public-key <key>',
      'trusted key: a file, or hex / base64; repeat for several',
      collect,
      []
    )
    .option('--threshold <n>', 'distinct trusted keys that must have signed', '1')
    .requiredOption('--model <path>', 'the model: a file or a directory')
    .option('--expect <capability>', 'exit 1 unless the capability equals this ocap1:… value')
    .option('--json', 'machine-readable output')
    .action(async (options: CapabilityOptions) => {
      const keys = readPublicKeys(options.publicKey)
      const verified = verifyAttestation(
        readInputFile(options.sba, 'SBA'),
        keys,
        parseThreshold(options.threshold)
      )
      const model = await digestModel(options.model, verified.ledger)
      const capability = computeCapability(
        verified.verifiedKeys.map(key => key.raw),
        verified.attestationDigest,
        model.root
      )
      if (options.expect !== undefined && options.expect !== capability) {
        throw mismatch(`capability ${capability} differs from the expected ${options.expect}`)
      }
      if (options.json) {
        printJson(context.io, {
          capability,
          modelRoot: model.root,
          attestationDigest: verified.attestationDigest,
          keyIds: verified.keyIds
        })
      } else {
        context.io.stdout(`${capability}\n`)
      }
    })
}
