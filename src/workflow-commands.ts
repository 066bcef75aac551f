import { randomBytes } from 'node:crypto'

// The GitHub runner reads any output line of a step that starts with `::` as a workflow command
// (set an output, mask, annotate, stop reading commands). Text the ledger, the build or a download
// controls must never be read as one.

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
