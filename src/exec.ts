import * as actionsExec from '@actions/exec'

export interface RunOptions {
  cwd?: string
  /** The complete environment of the child; nothing is inherited when given. */
  env?: Record<string, string>
  input?: Buffer
  /** Live output, for streaming a build log. */
  onStdout?: (chunk: Buffer) => void
  onStderr?: (chunk: Buffer) => void
}

export interface RunResult {
  exitCode: number
  stdout: string
  stderr: string
}

/**
 * Runs a program with an argv array, never through a shell. Resolves with the exit code
 * (non-zero is not an exception: callers decide the verdict); rejects only when the program
 * cannot be started. Injected everywhere a module runs a process, so tests can replace it.
 */
export type Run = (
  file: string,
  args: readonly string[],
  options?: RunOptions
) => Promise<RunResult>

export const run: Run = async (file, args, options = {}) => {
  const result = await actionsExec.getExecOutput(file, [...args], {
    cwd: options.cwd,
    env: options.env,
    input: options.input,
    silent: true,
    ignoreReturnCode: true,
    listeners: {
      stdout: options.onStdout,
      stderr: options.onStderr
    }
  })
  return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr }
}
