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
    buildLog: chunk => fence.output(chunk),
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
 * Raw build output between `::stop-commands::<token>` and `::<token>::`, with a token the build
 * cannot guess, so the runner reads none of it as a workflow command. Used by the action (stdout)
 * and by the CLI when it runs in a workflow step (stderr).
 */
export class CommandFence {
  private token: string | undefined
  private endsLine = true

  /** `fenced: false` only keeps the lines apart (outside a workflow there is no runner to fool). */
  constructor(
    private readonly write: (chunk: string | Buffer) => void,
    private readonly fenced = true
  ) {}

  output(chunk: Buffer): void {
    if (chunk.length === 0) return
    if (this.fenced && this.token === undefined) {
      this.toLineStart()
      this.token = randomBytes(16).toString('hex')
      this.write(`::stop-commands::${this.token}\n`)
    }
    this.write(chunk)
    this.endsLine = chunk[chunk.length - 1] === 0x0a
  }

  /** Ends a partial last line, so the next line written stands on its own. */
  toLineStart(): void {
    if (!this.endsLine) this.write('\n')
    this.endsLine = true
  }

  close(): void {
    this.toLineStart()
    if (this.token === undefined) return
    this.write(`::${this.token}::\n`)
    this.token = undefined
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
