import * as core from '@actions/core'
import * as cache from '@actions/cache'
import { run as runProcess } from './exec.js'
import { download } from './download.js'
import { runAction } from './action/main.js'

/** The action with the real runner toolkit; src/index.ts (and `npm run local-action`) call it. */
export async function run(): Promise<void> {
  try {
    await runAction({
      core: {
        getInput: name => core.getInput(name),
        setOutput: (name, value) => core.setOutput(name, value),
        setFailed: message => core.setFailed(message),
        setSecret: secret => core.setSecret(secret),
        error: (message, properties) => core.error(message, properties),
        warning: message => core.warning(message),
        info: message => core.info(message),
        startGroup: name => core.startGroup(name),
        endGroup: () => core.endGroup(),
        writeSummary: async html => {
          await core.summary.addRaw(html, true).write()
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
