#!/usr/bin/env node
import { run } from '../exec.js'
import { RunScope } from '../reproduce/run-scope.js'
import { processIo } from './io.js'
import { EXIT_FAILED } from './context.js'
import { main } from './main.js'

const scope = new RunScope()
// SIGINT / SIGTERM (Ctrl-C, a cancelled workflow): the build container lives outside this
// process tree, so it and the staging directories are removed before the failing exit.
const cancel = (signal: NodeJS.Signals) => {
  void scope.removeAll(run).finally(() => {
    processIo.stderr(
      `unverifiable: cancelled by ${signal}: the build container and the staging directory were removed\n`
    )
    process.exit(EXIT_FAILED)
  })
}
process.once('SIGINT', cancel)
process.once('SIGTERM', cancel)

process.exitCode = await main(process.argv.slice(2), { io: processIo, run, exitCode: 0, scope })
