import { Command, CommanderError } from 'commander'
import { messageOf, VerifyError } from '../errors.js'
import { inertLine } from '../workflow-commands.js'
import { UsageError, type CliIo } from './io.js'
import { registerDigest } from './commands/digest.js'
import { registerKeygen } from './commands/keygen.js'
import { registerSign } from './commands/sign.js'
import { registerVerifySba } from './commands/verify-sba.js'
import { registerCapability } from './commands/capability.js'
import { registerLedger } from './commands/ledger.js'
import { registerBuild } from './commands/build.js'
import { registerVerify } from './commands/verify.js'
import { registerTranscript } from './commands/transcript.js'
import { registerAccept } from './commands/accept.js'
import { registerLog } from './commands/log.js'
import type { Run } from '../exec.js'
import { VERSION } from '../version.js'

export const EXIT_PASS = 0
export const EXIT_FAILED = 1
const EXIT_USAGE = 2

export interface CliContext {
  io: CliIo
  run: Run
  /** Set by a command: the process exit code when it returns normally. */
  exitCode: number
}

function buildProgram(context: CliContext): Command {
  const program = new Command('verify-model')
    .description(
      'Verify a downloaded ML model by rebuilding it from its Signed Build Attestation.\nExit codes: 0 pass, 1 verification failed, 2 usage or input error.'
    )
    .version(VERSION)
    .exitOverride()
    .configureOutput({
      writeOut: text => context.io.stdout(text),
      writeErr: text => context.io.stderr(text)
    })
    .showHelpAfterError('(run verify-model --help for usage)')
  for (const register of [
    registerDigest,
    registerKeygen,
    registerSign,
    registerVerifySba,
    registerCapability,
    registerLedger,
    registerBuild,
    registerVerify,
    registerTranscript,
    registerAccept,
    registerLog
  ]) {
    register(program, context)
  }
  return program
}

/** Runs the CLI and returns its exit code; never calls process.exit itself. */
export async function main(argv: readonly string[], context: CliContext): Promise<number> {
  const program = buildProgram(context)
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return context.exitCode
  } catch (error) {
    return exitCodeFor(error, context.io, argv.includes('--json'))
  }
}

function exitCodeFor(error: unknown, io: CliIo, json: boolean): number {
  if (error instanceof CommanderError) {
    return error.exitCode === 0 ? EXIT_PASS : EXIT_USAGE
  }
  if (error instanceof UsageError) {
    io.stderr(`${inertLine(`error: ${error.message}`)}\n`)
    return EXIT_USAGE
  }
  if (error instanceof VerifyError) {
    if (json) io.stdout(JSON.stringify({ result: error.verdict, reason: error.message }) + '\n')
    io.stderr(`${inertLine(`${error.verdict}: ${error.message}`)}\n`)
    for (const line of error.detail?.trimEnd().split('\n') ?? []) io.stderr(`${inertLine(line)}\n`)
    return EXIT_FAILED
  }
  io.stderr(`${inertLine(`error: ${messageOf(error)}`)}\n`)
  return EXIT_USAGE
}
