import { writeFileSync } from 'node:fs'
import { Option, type Command } from 'commander'
import { signEnvelope } from '../../protocol/envelope.js'
import { parseStatement } from '../../protocol/ledger.js'
import { asUsageError, collect, readInputFile, readPrivateKeyFile, UsageError } from '../io.js'
import type { CliContext } from '../context.js'

export function registerSign(program: Command, context: CliContext): void {
  program
    .command('sign')
    .description(
      'Sign a build ledger statement into a DSSE envelope (the SBA). Refuses a statement that fails validation.'
    )
    .argument('<statement>', 'the in-toto statement JSON (from `verify-model ledger init`)')
    .option('--key <file>', 'PKCS#8 PEM private key; repeat for several signers', collect, [])
    .option('-o, --out <file>', 'write the SBA here instead of stdout')
    // The old spelling; --output names a declared build output everywhere else.
    .addOption(new Option('--output <file>').hideHelp())
    .action((statementPath: string, options: { key: string[]; out?: string; output?: string }) => {
      if (options.key.length === 0) throw new UsageError('at least one --key is required')
      const statement = readInputFile(statementPath, 'statement')
      const keys = options.key.map(file => readPrivateKeyFile(file))
      try {
        parseStatement(statement)
      } catch (error) {
        throw asUsageError(error)
      }
      const sba = signEnvelope(statement, keys)
      const out = options.out ?? options.output
      if (out) writeFileSync(out, sba)
      else context.io.stdout(sba)
    })
}
