import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Command } from 'commander'
import { withLock } from '../../tlog/lock.js'
import { cosignLatest, mergeCosignatures } from '../../tlog/witness.js'
import { CHECKPOINT_FILE } from '../../tlog/tiles.js'
import { LOCK_FILE, writeAtomically } from '../../tlog/writer.js'
import { printJson, readPrivateKeyFile } from '../io.js'
import { openLog, readVerifierKeyArg, withLogLocation, type LogLocationOptions } from '../log-io.js'
import { readState, writeState } from '../log-state-file.js'
import type { CliContext } from '../context.js'
import { logLine } from '../../text/sanitize.js'

interface CosignOptions extends LogLocationOptions {
  logKey: string
  key: string
  name: string
  state: string
  out?: string
  json?: boolean
}

export function registerLogCosign(log: Command, context: CliContext): void {
  withLogLocation(log.command('cosign'))
    .description(
      "Witness: cosign the log's checkpoint if it extends the one cosigned last (recomputed from the tiles)."
    )
    .requiredOption('--log-key <vkey>', "the log's verifier key (or a file holding it)")
    .requiredOption('--key <file>', "the witness's private key")
    .requiredOption('--name <name>', "the witness's name, e.g. witness.example.org/w1")
    .requiredOption('--state <file>', 'the last cosigned checkpoint (created on first use)')
    .option('-o, --out <file>', 'write the cosigned checkpoint here')
    .option('--json', 'machine-readable output')
    .action(async (options: CosignOptions) => {
      const logKey = readVerifierKeyArg(options.logKey)
      const witness = { name: options.name, key: readPrivateKeyFile(options.key) }
      const previous = readState(options.state)
      const source = openLog(options)
      try {
        const result = await cosignLatest(
          source,
          logKey,
          witness,
          previous,
          Math.floor(Date.now() / 1000)
        )
        if (options.dir !== undefined) await publish(options.dir, result.cosigned)
        if (options.out) writeFileSync(options.out, result.cosigned)
        writeState(options.state, result.cosigned)
        const summary = {
          origin: result.origin,
          treeSize: result.treeSize,
          previousSize: result.previousSize ?? null,
          witnessKey: result.witnessKey
        }
        if (options.json) printJson(context.io, summary)
        else {
          const since =
            result.previousSize === undefined
              ? 'first cosignature'
              : `extends size ${result.previousSize}`
          context.io.stdout(
            `${logLine(`cosigned ${result.origin} at size ${result.treeSize} (${since})`)}\nwitness-key ${result.witnessKey}\n`
          )
        }
      } finally {
        await source.close()
      }
    })
}

/** Adds the cosignature to the log's own checkpoint file, unless the log moved on meanwhile. */
async function publish(dir: string, cosigned: string): Promise<void> {
  await withLock(path.join(dir, LOCK_FILE), async () => {
    const file = path.join(dir, CHECKPOINT_FILE)
    const current = existsSync(file) ? readFileSync(file, 'utf8') : cosigned
    await writeAtomically(dir, CHECKPOINT_FILE, mergeCosignatures(current, cosigned))
  })
}
