#!/usr/bin/env node
import { run } from '../exec.js'
import { RunScope } from '../reproduce/run-scope.js'
import { processIo, type CliIo } from './io.js'
import { EXIT_FAILED } from './context.js'
import { main } from './main.js'

const scope = new RunScope()
let cancelled = false
// After a signal the command's own ending (a build killed by the cleanup, reported as exit 137)
// is not the verdict: it prints and writes nothing more, the cancellation line is the last word.
const io: CliIo = {
  stdout: text => {
    if (!cancelled) processIo.stdout(text)
  },
  stderr: text => {
    if (!cancelled) processIo.stderr(text)
  }
}
// SIGINT / SIGTERM (Ctrl-C, a cancelled workflow): the build container lives outside this
// process tree, so it and the staging directories are removed before the failing exit.
const cancel = (signal: NodeJS.Signals) => {
  cancelled = true
  void scope.removeAll(run).finally(() => {
    processIo.stderr(
      `unverifiable: cancelled by ${signal}: the build container and the staging directory were removed\n`
    )
    process.exit(EXIT_FAILED)
  })
}
process.once('SIGINT', cancel)
process.once('SIGTERM', cancel)

process.exitCode = await main(process.argv.slice(2), {
  io,
  run,
  exitCode: 0,
  scope,
  cancelled: () => cancelled
})
