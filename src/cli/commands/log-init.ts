import type { Command } from 'commander'
import { initLog } from '../../tlog/writer.js'
import { checkKeyName } from '../../tlog/note.js'
import { asUsageError } from '../io.js'
import { readPrivateKeyFile } from '../io.js'
import type { CliContext } from '../context.js'

export function registerLogInit(log: Command, context: CliContext): void {
  log
    .command('init')
    .description(
      'Create an empty log in DIR and print its verifier key (give it to verifiers as log-key).'
    )
    .requiredOption('--dir <dir>', 'the directory the log lives in (serve it as static files)')
    .requiredOption('--origin <origin>', "the log's name, e.g. example.com/verify-model-log")
    .requiredOption('--key <file>', "the log's private key (from 'verify-model keygen')")
    .action(async (options: { dir: string; origin: string; key: string }) => {
      try {
        checkKeyName(options.origin, '--origin')
      } catch (error) {
        throw asUsageError(error)
      }
      const vkey = await initLog(options.dir, options.origin, readPrivateKeyFile(options.key))
      context.io.stdout(`${vkey}\n`)
    })
}
