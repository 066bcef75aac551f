import { randomBytes } from 'node:crypto'
import type { Reporter } from '../verify/pipeline.js'

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
  let fence: string | undefined
  let logEndsLine = true
  const toLineStart = () => {
    if (!logEndsLine) write('\n')
    logEndsLine = true
  }
  const info = (line: string) => {
    toLineStart()
    core.info(inertLine(line))
  }
  const end = () => {
    clearInterval(heartbeat)
    if (fence !== undefined) {
      toLineStart()
      core.info(`::${fence}::`)
      fence = undefined
    }
    if (open) core.endGroup()
    open = false
  }
  return {
    phase: name => {
      end()
      core.startGroup(name)
      open = true
      if (name === 'build') {
        const started = Date.now()
        heartbeat = setInterval(
          () => info(`… still building (${Math.round((Date.now() - started) / 1000)} s)`),
          HEARTBEAT_MS
        )
        heartbeat.unref()
      }
    },
    info,
    buildLog: chunk => {
      if (chunk.length === 0) return
      if (fence === undefined) {
        fence = randomBytes(16).toString('hex')
        core.info(`::stop-commands::${fence}`)
      }
      write(chunk)
      logEndsLine = chunk[chunk.length - 1] === 0x0a
    },
    hashProgress: (what, progress) => {
      const now = Date.now()
      if (now - lastProgress < 5000) return
      lastProgress = now
      const gib = (n: number) => (n / 2 ** 30).toFixed(2)
      info(`hashing ${what}: ${gib(progress.bytesDone)} of ${gib(progress.bytesTotal)} GiB`)
    },
    end
  }
}

/**
 * One log line from text that may hold ledger strings (a build command, an output name): no line
 * breaks, no leading `::` (a workflow command) and no `##[` (the runner's older command form,
 * recognised anywhere in a line).
 */
export function inertLine(text: string): string {
  return text
    .replace(/\r\n?|\n/g, '\\n')
    .replace(/^(\s*)::/, '$1\\::')
    .replace(/##\[/g, '##\\[')
}
