import { gibibytes } from '../reproduce/limits.js'
import type { Reporter } from '../verify/pipeline.js'
import { CommandFence, inertLine } from '../workflow-commands.js'

/** The part of @actions/core the log uses. */
export interface LogCore {
  info(message: string): void
  startGroup(name: string): void
  endGroup(): void
}

const HEARTBEAT_MS = 60_000

/**
 * One collapsible log group per phase, and a heartbeat while a build runs. Nothing the ledger
 * controls may be read by the runner as a workflow command (a forged `::set-output`, `::error`,
 * `::add-mask` or `::stop-commands`): the build's own output is fenced with `::stop-commands::`
 * and a resume token it cannot guess, and other lines that may carry ledger text are made inert.
 * `write` takes the raw build log: the stream `core.info` writes to, so that the order holds.
 */
export function groupReporter(
  core: LogCore,
  write: (chunk: string | Buffer) => void = chunk => process.stdout.write(chunk)
): Reporter & { end(): void } {
  let open = false
  let lastProgress = 0
  let heartbeat: NodeJS.Timeout | undefined
  const fence = new CommandFence(write)
  const info = (line: string) => {
    fence.toLineStart()
    core.info(inertLine(line))
  }
  const end = () => {
    clearInterval(heartbeat)
    fence.close()
    if (open) core.endGroup()
    open = false
  }
  return {
    phase: name => {
      end()
      core.startGroup(name)
      open = true
      if (name === 'build' || name.startsWith('segment ')) {
        const started = Date.now()
        heartbeat = setInterval(
          () => info(`… still building (${Math.round((Date.now() - started) / 1000)} s)`),
          HEARTBEAT_MS
        )
        heartbeat.unref()
      }
    },
    info,
    buildLog: chunk => fence.output(chunk),
    hashProgress: (what, progress) => {
      const now = Date.now()
      if (now - lastProgress < 5000) return
      lastProgress = now
      const { bytesDone, bytesTotal } = progress
      info(`hashing ${what}: ${gibibytes(bytesDone)} of ${gibibytes(bytesTotal)} GiB`)
    },
    end
  }
}
