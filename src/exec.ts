import { spawn } from 'node:child_process'

export interface RunOptions {
  cwd?: string
  /** The complete environment of the child; nothing is inherited when given. */
  env?: Record<string, string>
  input?: Buffer
  /**
   * Live output, for streaming a build log. A stream with a listener is not collected: its
   * `stdout` / `stderr` in the result is empty, so output of any size costs no memory.
   */
  onStdout?: (chunk: Buffer) => void
  onStderr?: (chunk: Buffer) => void
  /** Kills the child (SIGKILL) when aborted; the promise still resolves with its exit. */
  signal?: AbortSignal
}

export interface RunResult {
  exitCode: number
  stdout: string
  stderr: string
}

/**
 * Runs a program with an argv array, never through a shell. Resolves with the exit code
 * (non-zero is not an exception: callers decide the verdict; a signal is 128 + its number);
 * rejects only when the program cannot be started. Injected everywhere a module runs a
 * process, so tests can replace it.
 */
export type Run = (
  file: string,
  args: readonly string[],
  options?: RunOptions
) => Promise<RunResult>

/** Collected output beyond this is dropped (a listener sees all of it). */
const MAX_COLLECTED_BYTES = 16 * 2 ** 20

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGKILL: 9,
  SIGTERM: 15
}

export const run: Run = (file, args, options = {}) =>
  new Promise((resolve, reject) => {
    const child = spawn(file, [...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']
    })
    const collect = (stream: NodeJS.ReadableStream, listener?: (chunk: Buffer) => void) => {
      const chunks: Buffer[] = []
      let bytes = 0
      stream.on('data', (chunk: Buffer) => {
        if (listener) return listener(chunk)
        if (bytes >= MAX_COLLECTED_BYTES) return
        chunks.push(chunk)
        bytes += chunk.length
      })
      return () => Buffer.concat(chunks).toString('utf8')
    }
    const stdout = collect(child.stdout!, options.onStdout)
    const stderr = collect(child.stderr!, options.onStderr)
    const abort = () => child.kill('SIGKILL')
    options.signal?.addEventListener('abort', abort, { once: true })
    if (options.signal?.aborted) abort()
    if (options.input !== undefined) {
      child.stdin?.on('error', () => undefined)
      child.stdin?.end(options.input)
    }
    child.on('error', error => {
      options.signal?.removeEventListener('abort', abort)
      reject(error)
    })
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', abort)
      const exitCode = code ?? 128 + (signal ? (SIGNAL_NUMBERS[signal] ?? 0) : 0)
      resolve({ exitCode, stdout: stdout(), stderr: stderr() })
    })
  })
