import type { Command } from 'commander'
import { monitorLog } from '../../tlog/monitor.js'
import { collect, printJson, readInputFile, readTrust, UsageError } from '../io.js'
import { openLog, readVerifierKeyArg, withLogLocation, type LogLocationOptions } from '../log-io.js'
import { readState, writeState } from '../log-state-file.js'
import { EXIT_FAILED, EXIT_PASS, type CliContext } from '../main.js'
import { inertLine } from '../../workflow-commands.js'

interface MonitorOptions extends LogLocationOptions {
  logKey: string
  publicKey: string[]
  known?: string
  state?: string
  json?: boolean
}

export function registerLogMonitor(log: Command, context: CliContext): void {
  withLogLocation(log.command('monitor'))
    .description(
      'List every entry since the last state that names your key; exit 1 when one is not in --known.'
    )
    .requiredOption('--log-key <vkey>', "the log's verifier key (or a file holding it)")
    .option('--public-key <key>', 'your publisher key; repeatable', collect, [])
    .option('--known <file>', 'attestation digests you published, one per line (# comments)')
    .option('--state <file>', 'the last checkpoint seen (advanced only when nothing is unknown)')
    .option('--json', 'machine-readable output')
    .action(async (options: MonitorOptions) => {
      const keys = readTrust({ publicKey: options.publicKey, threshold: '1' }).keys
      const known = readKnown(options.known)
      const source = openLog(options)
      try {
        const report = await monitorLog(
          source,
          readVerifierKeyArg(options.logKey),
          keys.map(key => key.raw),
          known,
          readState(options.state)
        )
        // An unknown entry keeps the old state: the alarm repeats until it is dealt with.
        if (options.state !== undefined && report.unknown === 0) {
          writeState(options.state, report.checkpoint)
        }
        if (options.json) {
          printJson(context.io, { ...report, checkpoint: undefined })
        } else {
          context.io.stdout(
            `${inertLine(`log ${report.origin}: entries ${report.fromSize}..${report.treeSize}, ${report.entries.length} name your key(s), ${report.unknown} unknown`)}\n`
          )
          for (const entry of report.entries) {
            const mark = entry.known ? 'known' : 'UNKNOWN'
            context.io.stdout(
              `${mark} index ${entry.index} attestation ${entry.attestationDigest}\n`
            )
          }
        }
        context.exitCode = report.unknown === 0 ? EXIT_PASS : EXIT_FAILED
      } finally {
        await source.close()
      }
    })
}

function readKnown(file: string | undefined): Set<string> {
  if (file === undefined) return new Set()
  const digests = new Set<string>()
  readInputFile(file, 'known digests')
    .toString('utf8')
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.replace(/#.*/, '').trim()
      if (line === '') return
      if (!/^[0-9a-f]{64}$/.test(line)) {
        throw new UsageError(`--known ${file} line ${i + 1}: expected a 64-hex attestation digest`)
      }
      digests.add(line)
    })
  return digests
}
