import type { Command } from 'commander'
import { inertLine } from '../../workflow-commands.js'
import { printJson, verifySbaFile, withTrustOptions, type TrustOptions } from '../io.js'
import type { CliContext } from '../main.js'
import {
  checkLogProof,
  readLogRequirement,
  withLogProofOptions,
  type LogProofOptions
} from '../log-io.js'

export function registerVerifySba(program: Command, context: CliContext): void {
  withLogProofOptions(withTrustOptions(program.command('verify-sba')))
    .description(
      'Check an SBA: envelope, signatures against the trusted keys, and every ledger rule.'
    )
    .argument('<sba>', 'the SBA (DSSE envelope JSON)')
    .option('--json', 'machine-readable output')
    .action(
      async (sbaPath: string, options: TrustOptions & LogProofOptions & { json?: boolean }) => {
        const requirement = await readLogRequirement(options)
        const verified = verifySbaFile(sbaPath, options)
        const log = requirement && checkLogProof(requirement, verified)
        if (options.json) {
          printJson(context.io, {
            valid: true,
            attestationDigest: verified.attestationDigest,
            keyIds: verified.keyIds,
            source: verified.ledger.source,
            image: verified.ledger.environment.reference,
            ...(log && { log })
          })
        } else {
          context.io.stdout(`valid\nattestation-digest ${verified.attestationDigest}\n`)
          for (const keyId of verified.keyIds) context.io.stdout(`key-id ${keyId}\n`)
          if (log)
            context.io.stdout(`log-index ${log.index}\n${inertLine(`log-origin ${log.origin}`)}\n`)
        }
      }
    )
}
