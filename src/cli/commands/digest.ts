import type { Command } from 'commander'
import { writeManifest } from '../../digest/manifest.js'
import { treeSha256 } from '../../digest/tree.js'
import { asUsageError, printJson } from '../io.js'
import type { CliContext } from '../context.js'

export function registerDigest(program: Command, context: CliContext): void {
  program
    .command('digest')
    .description('Print the treeSha256 root of a file or directory (docs/protocol.md section 1).')
    .argument('<path>', 'file or directory')
    .option(
      '--single-name <name>',
      'entry name when <path> is a single file (default: its base name)'
    )
    .option(
      '--manifest <file>',
      'also write {root, manifest} as JSON, one manifest entry per line (diff-friendly)'
    )
    .option('--json', 'print {root, manifest} as JSON')
    .action(
      async (
        target: string,
        options: { singleName?: string; manifest?: string; json?: boolean }
      ) => {
        const digest = await treeSha256(target, { singleName: options.singleName }).catch(error => {
          throw asUsageError(error)
        })
        if (options.manifest) await writeManifest(options.manifest, digest)
        if (options.json) printJson(context.io, digest)
        else context.io.stdout(`${digest.root}\n`)
      }
    )
}
