// Running a segmented build (PROTOCOL.md section 9) on a prepared build: all N runs in order for
// the publisher, or one run from a published state for a verifier's spot check.
import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import type { Run } from '../exec.js'
import { removeBuildTree } from '../reproduce/cleanup.js'
import type { PreparedBuild } from '../reproduce/index.js'
import { writeStateArchive, unpackState } from './state-archive.js'

/** The file name of state `index` in a `--states` directory. */
export function stateArchiveName(index: number): string {
  return `state-${index}.tar`
}

export interface BuildSegmentsOptions {
  segments: number
  /** Where `state-<i>.tar` are written (created; existing archives are never replaced). */
  statesDir: string
  /** Scratch space for the states between runs. */
  workDir: string
  run: Run
  onSegmentStart?: (index: number) => void
  onSegmentDone?: (index: number, root: string, durationMs: number) => void
  onLog?: (chunk: Buffer) => void
}

export interface BuiltSegments {
  /** S_1 … S_N. */
  states: string[]
  /** State N, unpacked from its archive (inside workDir). */
  lastStateDir: string
}

/**
 * The publisher's build: runs 1..N in order, each resuming from the previous state as it is
 * published (the archive unpacked again), so that a verifier's /prev is byte for byte the
 * publisher's.
 */
export async function buildSegments(
  prepared: PreparedBuild,
  options: BuildSegmentsOptions
): Promise<BuiltSegments> {
  await mkdir(options.statesDir, { recursive: true })
  const states: string[] = []
  let prevDir: string | undefined
  for (let index = 1; index <= options.segments; index++) {
    options.onSegmentStart?.(index)
    const kept = path.join(options.workDir, `out-${index}`)
    const result = await prepared.run({
      segment: index,
      prevDir,
      wholeOut: true,
      keepOutputsIn: kept,
      onLog: options.onLog
    })
    const archive = path.join(options.statesDir, stateArchiveName(index))
    const written = await writeStateArchive(kept, archive)
    await removeBuildTree(kept, options.run)
    if (written.root !== result.outputs.root)
      throw new Error(
        `state ${index} changed between hashing (${result.outputs.root}) and archiving (${written.root})`
      )
    const unpacked = path.join(options.workDir, `state-${index}`)
    await unpackState(archive, unpacked, {
      label: `state ${index} (${archive})`,
      expectedRoot: written.root
    })
    if (prevDir !== undefined) await rm(prevDir, { recursive: true, force: true })
    prevDir = unpacked
    states.push(written.root)
    options.onSegmentDone?.(index, written.root, result.durationMs)
  }
  return { states, lastStateDir: prevDir as string }
}

export interface SegmentRerun {
  index: number
  /** S_(i-1), the root of the state given as /prev (none for the first segment). */
  prevRoot?: string
  /** S_i as the transcript commits to it. */
  expectedRoot: string
  /** The root the re-run left in /out. */
  root: string
  durationMs: number
}

/** Re-runs segment `index` from `prevDir` (already checked to be S_(index-1)); compares nothing. */
export async function rerunSegment(
  prepared: PreparedBuild,
  index: number,
  prev: { dir: string; root: string } | undefined,
  expectedRoot: string,
  onLog?: (chunk: Buffer) => void
): Promise<SegmentRerun> {
  const result = await prepared.run({ segment: index, prevDir: prev?.dir, wholeOut: true, onLog })
  return {
    index,
    ...(prev === undefined ? {} : { prevRoot: prev.root }),
    expectedRoot,
    root: result.outputs.root,
    durationMs: result.durationMs
  }
}
