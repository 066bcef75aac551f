import type { Command } from 'commander'
import { verifyAttestation } from '../../protocol/attestation.js'
import { collect, parseThreshold, printJson, readInputFile, readPublicKeys } from '../io.js'
import type { CliContext } from '../main.js'

export function registerVerifySba(program: Command, context: CliContext): void {
  program
    .command('verify-sba')
    .description(
      'Check an SBA: envelope, signatures against the trusted keys, and every ledger rule.'
    )
    .argument('<sba>', 'the SBA (DSSE envelope JSON)')
    .option(
      '--public-key <key>',
      'trusted key: a file, or hex / base64; repeat for several',
      collect,
      []
    )
    .option('--threshold <n>', 'distinct trusted keys that must have signed', '1')
    .option('--json', 'machine-readable output')
    .action(
      (sbaPath: string, options: { publicKey: string[]; threshold: string; json?: boolean }) => {
        const keys = readPublicKeys(options.publicKey)
        const threshold = parseThreshold(options.threshold)
        const verified = verifyAttestation(readInputFile(sbaPath, 'SBA'), keys, threshold)
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
      }
    )
}
