import type { Command } from 'commander'
import { printJson, verifySbaFile, withTrustOptions, type TrustOptions } from '../io.js'
import type { CliContext } from '../context.js'

export function registerVerifySba(program: Command, context: CliContext): void {
  withTrustOptions(program.command('verify-sba'))
    .description(
      'Check an SBA: envelope, signatures against the trusted keys, and every ledger rule.'
    )
    .argument('<sba>', 'the SBA (DSSE envelope JSON)')
    .option('--json', 'machine-readable output')
    .action((sbaPath: string, options: TrustOptions & { json?: boolean }) => {
      const verified = verifySbaFile(sbaPath, options)
      if (options.json) {
        printJson(context.io, {
          valid: true,
          attestationDigest: verified.attestationDigest,
          keyIds: verified.keyIds,
          source: verified.ledger.source,
          image: verified.ledger.environment.reference
        })
      } else {
        context.io.stdout(`valid\nattestation-digest ${verified.attestationDigest}\n`)
        for (const keyId of verified.keyIds) context.io.stdout(`key-id ${keyId}\n`)
      }
    })
}
