import { writeFileSync } from 'node:fs'
import type { Command } from 'commander'
import { proveEntry } from '../../tlog/prove.js'
import { directorySource } from '../../tlog/source.js'
import { appendEntries } from '../../tlog/writer.js'
import { collect, printJson, readPrivateKeyFile } from '../io.js'
import { entryOf, verifyEnvelopeFile } from '../log-io.js'
import type { CliContext } from '../context.js'

interface AppendOptions {
  dir: string
  key: string
  publicKey: string[]
  out?: string
  json?: boolean
}

export function registerLogAppend(log: Command, context: CliContext): void {
  log
    .command('append')
    .description(
      "Verify an SBA's signatures under the given keys, then append its entry (bundle, tiles, signed checkpoint)."
    )
    .argument('<sba>', 'the SBA, or a rebuild attestation or transcript (DSSE envelope JSON)')
    .requiredOption('--dir <dir>', 'the log directory')
    .requiredOption('--key <file>', "the log's private key")
    .option(
      '--public-key <key>',
      'a publisher key the SBA must verify under; repeatable',
      collect,
      []
    )
    .option('-o, --out <file>', 'also write the .tlog-proof of the new entry here')
    .option('--json', 'machine-readable output')
    .action(async (sbaPath: string, options: AppendOptions) => {
      const verified = verifyEnvelopeFile(sbaPath, { publicKey: options.publicKey, threshold: '1' })
      const entry = entryOf(verified)
      const appended = await appendEntries(options.dir, readPrivateKeyFile(options.key), [entry])
      if (options.out) {
        const { proof } = await proveEntry(directorySource(options.dir), entry)
        writeFileSync(options.out, proof)
      }
      const result = {
        index: appended.index,
        treeSize: appended.treeSize,
        attestationDigest: verified.attestationDigest,
        keyIds: verified.keyIds
      }
      if (options.json) printJson(context.io, result)
      else context.io.stdout(`index ${result.index}\ntree-size ${result.treeSize}\n`)
    })
}
