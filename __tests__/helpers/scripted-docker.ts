import type { Run, RunResult } from '../../src/exec.js'

export const result = (exitCode: number, stdout = '', stderr = ''): RunResult => ({
  exitCode,
  stdout,
  stderr
})

/** A fake docker answering each subcommand from a queue of results; records the calls. */
export function scriptedDocker(answers: Record<string, RunResult[]>) {
  const calls: string[][] = []
  const run: Run = async (_file, args) => {
    calls.push([...args])
    const next = answers[args[0]]?.shift()
    if (next === undefined) throw new Error(`unexpected docker ${args.join(' ')}`)
    return next
  }
  return { run, calls }
}
