import { writeFileSync } from 'node:fs'
import type { Command } from 'commander'
import { proveEntry } from '../../tlog/prove.js'
import { collect } from '../io.js'
import {
  entryOf,
  verifyEnvelopeFile,
  openLog,
  printInert,
  withLogLocation,
  type LogLocationOptions
} from '../log-io.js'
import type { CliContext } from '../context.js'

interface ProveOptions extends LogLocationOptions {
  publicKey: string[]
  out?: string
}

export function registerLogProve(log: Command, context: CliContext): void {
  withLogLocation(log.command('prove'))
    .description("Write the .tlog-proof of an SBA's entry under the log's current checkpoint.")
    .argument('<sba>', 'the SBA, or a rebuild attestation or transcript (DSSE envelope JSON)')
    .option('--public-key <key>', 'a publisher key the SBA verifies under; repeatable', collect, [])
    .option('-o, --out <file>', 'write the proof here instead of stdout')
    .action(async (sbaPath: string, options: ProveOptions) => {
      const verified = verifyEnvelopeFile(sbaPath, { publicKey: options.publicKey, threshold: '1' })
      const source = openLog(options)
      try {
        const { proof } = await proveEntry(source, entryOf(verified))
        if (options.out) writeFileSync(options.out, proof)
        else printInert(context.io, proof, 'proof')
      } finally {
        await source.close()
      }
    })
}
