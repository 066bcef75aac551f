import * as core from '@actions/core'
import * as cache from '@actions/cache'
import { run as runProcess } from './exec.js'
import { download } from './download.js'
import { runAction } from './action/main.js'
import { escapeUnsafe, logLines } from './text/sanitize.js'

/** The action with the real runner toolkit; src/index.ts (and `npm run local-action`) call it. */
export async function run(): Promise<void> {
  try {
    await runAction({
      core: {
        getInput: name => core.getInput(name),
        setOutput: (name, value) => core.setOutput(name, value),
        // Every message passes the one sanitiser: it may carry ledger, build or server text.
        setFailed: message => core.setFailed(escapeUnsafe(message)),
        setSecret: secret => core.setSecret(secret),
        error: (message, properties) => core.error(escapeUnsafe(message), properties),
        warning: message => core.warning(escapeUnsafe(message)),
        info: message => core.info(logLines(message).join('\n')),
        startGroup: name => core.startGroup(name),
        endGroup: () => core.endGroup(),
        writeSummary: async html => {
          await core.summary.addRaw(html, true).write()
        },
        saveState: (name, value) => core.saveState(name, value)
      },
      onTermination: handler => {
        const listener = (signal: NodeJS.Signals) => {
          void handler(signal).finally(() => process.exit())
        }
        process.once('SIGINT', listener)
        process.once('SIGTERM', listener)
        return () => {
          process.off('SIGINT', listener)
          process.off('SIGTERM', listener)
        }
      },
      run: runProcess,
      download,
      cache,
      env: process.env
    })
  } catch (error) {
    core.setFailed(
      `verify-model failed unexpectedly: ${error instanceof Error ? error.stack : String(error)}`
    )
  }
}
