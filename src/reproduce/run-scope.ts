import { randomBytes } from 'node:crypto'
import type { Run } from '../exec.js'
import { removeBuildTree } from './cleanup.js'

/** The docker label on every build container, whose value is the run's id. */
export const RUN_LABEL = 'org.openclaw.verify-model.run'

/** How long a container is given to disappear after `docker rm --force`. */
const REMOVAL_DEADLINE_MS = 30_000
const RETRY_MS = 250

/**
 * What one run of the action or the CLI leaves behind while it works: build containers
 * (labelled with `id`) and staging directories. A cancelled or killed run removes them from here
 * (a signal handler, the action's `post:` step).
 */
export class RunScope {
  private readonly dirs = new Set<string>()

  constructor(readonly id: string = `${Date.now()}-${randomBytes(6).toString('hex')}`) {}

  track(dir: string): void {
    this.dirs.add(dir)
  }

  /** Removes every container of this run and every tracked directory; never throws. */
  async removeAll(run: Run, extraDirs: readonly string[] = []): Promise<string[]> {
    const removed = await removeRunContainers(run, this.id).catch(() => [])
    for (const dir of [...this.dirs, ...extraDirs]) await removeBuildTree(dir, run)
    return removed
  }
}

/** The names of this run's containers, in any state. */
async function runContainers(run: Run, id: string): Promise<string[]> {
  const listed = await run('docker', [
    'ps',
    '--all',
    '--filter',
    `label=${RUN_LABEL}=${id}`,
    '--format',
    '{{.Names}}'
  ])
  if (listed.exitCode !== 0) return []
  return listed.stdout.split('\n').filter(Boolean)
}

export async function removeRunContainers(run: Run, id: string): Promise<string[]> {
  const names = await runContainers(run, id)
  for (const name of names) await removeContainer(run, name)
  return names
}

/**
 * `docker rm --force --volumes` until `docker inspect` no longer finds the container (a removal
 * can race with a container still being created), for at most `deadlineMs`. Whether it is gone.
 */
export async function removeContainer(
  run: Run,
  name: string,
  options: { deadlineMs?: number; stillStarting?: () => boolean } = {}
): Promise<boolean> {
  const deadline = Date.now() + (options.deadlineMs ?? REMOVAL_DEADLINE_MS)
  for (;;) {
    await run('docker', ['rm', '--force', '--volumes', name]).catch(() => undefined)
    const inspected = await run('docker', ['inspect', '--format', '{{.Id}}', name]).catch(
      () => undefined
    )
    const gone = inspected === undefined || inspected.exitCode !== 0
    if (gone && !options.stillStarting?.()) return true
    if (Date.now() >= deadline) return gone
    await new Promise(resolve => setTimeout(resolve, RETRY_MS))
  }
}
