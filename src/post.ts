import * as core from '@actions/core'
import { STATE_DIRS, STATE_RUN_ID } from './action/state.js'
import type { Run } from './exec.js'
import { RunScope } from './reproduce/run-scope.js'
import { logLine } from './text/sanitize.js'

/**
 * The action's `post:` step: when the main step was killed (the runner's last resort after a
 * cancel), its build container lives on outside the process tree and its staging stays. Removes
 * every container labelled with the main step's run id, and the directories it held.
 */
export async function post(
  getState: (name: string) => string,
  run: Run,
  info: (line: string) => void
): Promise<void> {
  const id = getState(STATE_RUN_ID)
  if (!id) return
  let dirs: string[] = []
  try {
    const parsed: unknown = JSON.parse(getState(STATE_DIRS) || '[]')
    if (Array.isArray(parsed)) dirs = parsed.filter(dir => typeof dir === 'string')
  } catch {
    dirs = []
  }
  const removed = await new RunScope(id).removeAll(run, dirs)
  for (const name of removed) info(logLine(`removed container ${name} left by the main step`))
}

export async function runPost(run: Run): Promise<void> {
  try {
    await post(
      name => core.getState(name),
      run,
      line => core.info(line)
    )
  } catch (error) {
    // Cleanup only: a failure here must not fail a job whose verdict is already given.
    core.warning(`verify-model cleanup: ${error instanceof Error ? error.message : String(error)}`)
  }
}
