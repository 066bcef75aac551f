import { writeFileSync } from 'node:fs'
import type { Command } from 'commander'
import { treeSha256 } from '../../digest/tree.js'
import { asUsageError, printJson } from '../io.js'
import type { CliContext } from '../main.js'

export function registerDigest(program: Command, context: CliContext): void {
  program
    .command('digest')
    .description('Print the treeSha256 root of a file or directory (PROTOCOL.md section 1).')
    .argument('<path>', 'file or directory')
    .option(
      '--single-name <name>',
      'entry name when <path> is a single file (default: its base name)'
    )
    .option('--manifest <file>', 'also write the manifest (sorted {path, size, sha256}) as JSON')
    .option('--json', 'print {root, manifest} as JSON')
    .action(
      async (
        target: string,
        options: { singleName?: string; manifest?: string; json?: boolean }
      ) => {
        const digest = await treeSha256(target, { singleName: options.singleName }).catch(error => {
          throw asUsageError(error)
        })
        if (options.manifest)
          writeFileSync(options.manifest, JSON.stringify(digest.manifest, null, 2) + '\n')
        if (options.json) printJson(context.io, digest)
        else context.io.stdout(`${digest.root}\n`)
      }
    )
}
