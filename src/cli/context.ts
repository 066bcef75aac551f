import type { Run } from '../exec.js'
import type { RunScope } from '../reproduce/run-scope.js'
import type { CliIo } from './io.js'

// What main hands every command, in a module of its own so commands never import main.

export const EXIT_PASS = 0
export const EXIT_FAILED = 1
export const EXIT_USAGE = 2

export interface CliContext {
  io: CliIo
  run: Run
  /** Set by a command: the process exit code when it returns normally. */
  exitCode: number
  /** What a build leaves while it runs (containers, directories), for a signal's cleanup. */
  scope?: RunScope
  /**
   * True once SIGINT or SIGTERM ended the run: what the command then finishes (a build the
   * cleanup killed) is no verdict, so it writes no report file.
   */
  cancelled?: () => boolean
}
