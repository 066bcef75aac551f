// The state of a witness or a monitor: the last checkpoint note it accepted.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { UsageError } from './io.js'

const STATE_VERSION = 1

export function readState(file: string | undefined): string | undefined {
  if (file === undefined || !existsSync(file)) return undefined
  let state: unknown
  try {
    state = JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new UsageError(`--state ${file}: not JSON (${(error as Error).message})`)
  }
  const { version, checkpoint } = (state ?? {}) as { version?: unknown; checkpoint?: unknown }
  if (version !== STATE_VERSION || typeof checkpoint !== 'string') {
    throw new UsageError(`--state ${file}: expected {"version": 1, "checkpoint": "<note>"}`)
  }
  return checkpoint
}

export function writeState(file: string, checkpoint: string): void {
  const temp = `${file}.tmp-${process.pid}`
  writeFileSync(temp, `${JSON.stringify({ version: STATE_VERSION, checkpoint }, null, 2)}\n`)
  renameSync(temp, file)
}
