import { main } from '../../src/cli/main.js'
import { run } from '../../src/exec.js'

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs the CLI in-process with captured output. */
export async function cli(...argv: string[]): Promise<CliResult> {
  let stdout = ''
  let stderr = ''
  const code = await main(argv, {
    io: { stdout: text => (stdout += text), stderr: text => (stderr += text) },
    run,
    exitCode: 0
  })
  return { code, stdout, stderr }
}
