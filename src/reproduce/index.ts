import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { chmod, cp, lstat, mkdir, mkdtemp, readdir, rename, stat } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { VerifyError, unverifiable, type ErrorCode } from '../errors.js'
import type { Run } from '../exec.js'
import type { HashProgress, TreeDigest } from '../digest/types.js'
import type { Ledger } from '../protocol/ledger.js'
import { removeBuildTree } from './cleanup.js'
import { buildRunArgs, checkRunnable, runContainer, type ContainerResult } from './container.js'
import { checkCpuFeatures, type CpuInfoReader } from './cpu-features.js'
import { checkDependencies } from './dependencies.js'
import {
  checkQemu,
  emulatedRunArgs,
  modelRunsLevel,
  nativePrograms,
  QEMU_LOG_NAME,
  resolveProgram,
  type QemuCpuModel
} from './emulation.js'
import { prepareDataset } from './dataset.js'
import { declaredVolumes, lastLine, preflight } from './docker.js'
import { pullImage } from './pull.js'
import { DEFAULT_MAX_OUTPUT_BYTES, bytesUnder, defaultMemoryBytes, formatBytes } from './limits.js'
import { collectOutputs } from './outputs.js'
import { makeCallers } from './ownership.js'
import { copySourceTree, fetchSource } from './source.js'

export type ReproducePhase = 'source' | 'dependencies' | 'dataset' | 'image' | 'build' | 'outputs'

/** What is fetched and checked once, however many times the command then runs. */
export interface PrepareOptions {
  /** Where the temporary source, dataset and output directories are made (and removed). */
  workDir: string
  /** A local copy of the ledger's dataset; else `dataset.uri` is downloaded. */
  datasetDir?: string
  /** Without datasetDir: supplies a verified-on-use copy (the action's cache), or undefined. */
  resolveDataset?: (ledger: Ledger) => Promise<string | undefined>
  /** The caller's opt-in for a ledger asking `network: bridge`. */
  allowNetwork: boolean
  /** The caller's opt-in for a ledger asking `gpus: all`. */
  allowGpu?: boolean
  /** Labels the build container (RUN_LABEL) so a cancelled run's cleanup finds it. */
  runId?: string
  /** The build is killed at the lower of this and the ledger's `timeoutSeconds`. */
  timeoutCapSeconds?: number
  /** The build container's memory limit (default: defaultMemoryBytes()). */
  memoryBytes?: number
  /** A build leaving more than this in /out failed (default: DEFAULT_MAX_OUTPUT_BYTES). */
  maxOutputBytes?: number
  /**
   * Publishers only (`verify-model build --emulate-cpu`, `--cross-check`): run the build under
   * qemu-user as this CPU model instead of on the host's CPU. Never given by `verify`.
   */
  emulate?: { qemuPath: string; model: QemuCpuModel }
  onPhase?: (phase: ReproducePhase, detail?: string) => void
  /** A progress line within a phase (the image pull). */
  onInfo?: (line: string) => void
}

/** One run of the ledger's command on a prepared build. */
export interface BuildRunOptions {
  /** Run `i` of a segmented build (docs/protocol.md section 9): sets VERIFY_MODEL_SEGMENT(S). */
  segment?: number
  /** The previous state, mounted read-only at /prev (segments after the first). */
  prevDir?: string
  /** Hash all of /out (a segment's state) instead of `build.outputs`. */
  wholeOut?: boolean
  /** Move /out here (a path that must not exist yet) instead of removing it. */
  keepOutputsIn?: string
  onPhase?: (phase: ReproducePhase, detail?: string) => void
  onLog?: (chunk: Buffer) => void
  onHashProgress?: (progress: HashProgress) => void
}

export interface BuildRunResult {
  outputs: TreeDigest
  /** Where /out is: `keepOutputsIn`, or (when it was not given) a removed directory. */
  outDir: string
  exitCode: number
  durationMs: number
  logTail: string
  /** With `emulate`: the programs the build exec'd, which ran on the host's CPU, not emulated. */
  nativePrograms?: string[]
}

/** Source, dependencies, dataset and image checked: the command can now run any number of times. */
export interface PreparedBuild {
  dataset?: TreeDigest
  commit: string
  imageReference: string
  run(options?: BuildRunOptions): Promise<BuildRunResult>
}

export interface ReproduceOptions
  extends PrepareOptions, Omit<BuildRunOptions, 'segment' | 'prevDir' | 'wholeOut'> {}

export interface ReproduceDeps {
  run: Run
  /** CPUs this runner can give the build (default: what the process may use). */
  hostCpus?: number
  now?: () => number
  sleep?: (ms: number) => Promise<void>
  /** This runner's /proc/cpuinfo (default: the file). */
  readCpuInfo?: CpuInfoReader
}

export interface ReproduceResult extends BuildRunResult {
  dataset?: TreeDigest
  commit: string
  imageReference: string
}

/**
 * Runs docs/protocol.md section 4 for a ledger: source at its commit, dependencies, dataset,
 * image by digest, one `docker run` under the contract, then the outputs' tree digest.
 * Throws a VerifyError with the verdict of section 6 on any failure; the temporary
 * directories and the container are removed on every path.
 */
export async function reproduce(
  ledger: Ledger,
  options: ReproduceOptions,
  deps: ReproduceDeps
): Promise<ReproduceResult> {
  if (options.keepOutputsIn !== undefined) await mustNotExist(options.keepOutputsIn)
  return withPreparedBuild(ledger, options, deps, async prepared => {
    const result = await prepared.run(options)
    const { dataset, commit, imageReference } = prepared
    return { ...result, dataset, commit, imageReference }
  })
}

/**
 * Fetches and checks everything a ledger's build needs once (policy, source, dependencies,
 * dataset, image), then hands `use` a build it can run as often as it likes (a segmented
 * build's runs, or the few a spot check re-runs). Everything is removed when `use` settles.
 */
export async function withPreparedBuild<T>(
  ledger: Ledger,
  options: PrepareOptions,
  deps: ReproduceDeps,
  use: (prepared: PreparedBuild) => Promise<T>
): Promise<T> {
  const { build } = ledger
  const phase = options.onPhase ?? (() => undefined)
  const runner = {
    allowNetwork: options.allowNetwork,
    allowGpu: options.allowGpu === true,
    hostCpus: deps.hostCpus ?? os.availableParallelism()
  }
  checkRunnable(build, runner)
  await checkBuildCpu(ledger, options.emulate, deps.readCpuInfo)
  const scratch = await mkdtemp(path.join(options.workDir, 'reproduce-'))
  try {
    const srcDir = path.join(scratch, 'source')

    phase('source', ledger.source.uri)
    await fetchSource(ledger.source, srcDir, {
      run: deps.run,
      sourceDateEpoch: build.sourceDateEpoch
    })

    phase('dependencies', `${ledger.dependencies.length} file(s)`)
    await checkDependencies(srcDir, ledger.dependencies)

    phase('dataset', ledger.dataset ? (options.datasetDir ?? ledger.dataset.uri) : 'none declared')
    const dataset = await prepareDataset(ledger.dataset, {
      dir: options.datasetDir ?? (ledger.dataset && (await options.resolveDataset?.(ledger))),
      workDir: scratch
    })

    phase('image', ledger.environment.reference)
    await preflight(deps.run)
    await pullImage(deps.run, ledger.environment, {
      sleep: deps.sleep,
      onProgress: options.onInfo
    })
    const imageVolumes = await declaredVolumes(deps.run, ledger.environment.reference)

    let runs = 0
    const context: RunContext = {
      ledger,
      runner,
      deps,
      srcDir,
      dataDir: dataset?.dir,
      timeoutSeconds: Math.min(build.timeoutSeconds, options.timeoutCapSeconds ?? Infinity),
      memoryBytes: options.memoryBytes ?? defaultMemoryBytes(),
      emulate: options.emulate,
      maxOutputBytes: options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
      runId: options.runId,
      imageVolumes
    }
    return await use({
      dataset: dataset?.digest,
      commit: ledger.source.gitCommit,
      imageReference: ledger.environment.reference,
      run: (runOptions = {}) => runOnce(context, path.join(scratch, `run-${++runs}`), runOptions)
    })
  } finally {
    await removeBuildTree(scratch, deps.run)
  }
}

interface RunContext {
  ledger: Ledger
  runner: { allowNetwork: boolean; allowGpu: boolean; hostCpus: number }
  deps: ReproduceDeps
  runId?: string
  imageVolumes: string[]
  /** The exported commit, never run on: each run gets a fresh copy. */
  srcDir: string
  dataDir?: string
  timeoutSeconds: number
  memoryBytes: number
  maxOutputBytes: number
  emulate?: PrepareOptions['emulate']
}

/** One `docker run` under the contract, in `runDir`, which is removed before returning. */
async function runOnce(
  context: RunContext,
  runDir: string,
  options: BuildRunOptions
): Promise<BuildRunResult> {
  const { ledger, deps, timeoutSeconds, memoryBytes } = context
  const { build } = ledger
  const phase = options.onPhase ?? (() => undefined)
  if (options.keepOutputsIn !== undefined) await mustNotExist(options.keepOutputsIn)
  try {
    const srcDir = path.join(runDir, 'src')
    const outDir = path.join(runDir, 'out')
    await mkdir(runDir)
    await copySourceTree(context.srcDir, srcDir, build.sourceDateEpoch)
    // The build runs as uid 1000, the verifier as whoever runs it (root here, uid 1001 on
    // GitHub runners): /src and /out must be writable by the build whatever their owner, and
    // what the build writes (umask 022 by default) stays readable for hashing afterwards.
    await makeWorldWritable(srcDir)
    await mkdir(outDir)
    await chmod(outDir, 0o777)

    const name = `verify-model-${randomBytes(6).toString('hex')}`
    const nativeArgs = buildRunArgs(
      ledger,
      { src: srcDir, data: context.dataDir, out: outDir, prev: options.prevDir },
      {
        name,
        ...context.runner,
        memory: String(memoryBytes),
        segment: options.segment,
        runId: context.runId,
        imageVolumes: context.imageVolumes
      }
    )
    const qemuLogDir = path.join(runDir, 'qemu-log')
    if (context.emulate !== undefined) {
      await mkdir(qemuLogDir)
      await chmod(qemuLogDir, 0o777)
    }
    const args =
      context.emulate === undefined
        ? nativeArgs
        : emulatedRunArgs(nativeArgs, ledger.environment.reference, build.command, {
            ...context.emulate,
            program: await resolveProgram(deps.run, ledger),
            logDir: qemuLogDir
          })
    phase('build', `${name}: ${JSON.stringify(build.command)}`)
    const container = await runContainer(args, {
      run: deps.run,
      name,
      timeoutSeconds,
      onLog: options.onLog,
      now: deps.now
    })
    const failure = containerFailure(container, { timeoutSeconds, memoryBytes })
    if (failure !== undefined) throw failure

    phase(
      'outputs',
      options.wholeOut ? 'all of /out' : (build.outputs?.join(', ') ?? 'all of /out')
    )
    await checkOutputSize(outDir, context.maxOutputBytes)
    // Kept outputs become the caller's (owner, 0755/0644) before they are hashed, so what is
    // hashed and reported is what nobody else (uid 1000 may be another account) can change.
    const keptDir = options.keepOutputsIn ?? outDir
    const outputs = await keepAndCollect(
      outDir,
      keptDir,
      options.wholeOut ? undefined : build.outputs,
      deps.run,
      options.onHashProgress
    )
    const natives = context.emulate === undefined ? undefined : await readNativePrograms(qemuLogDir)
    return {
      outputs,
      outDir: keptDir,
      exitCode: container.exitCode,
      durationMs: container.durationMs,
      logTail: container.logTail,
      ...(natives === undefined ? {} : { nativePrograms: natives })
    }
  } finally {
    await removeBuildTree(runDir, deps.run)
  }
}

/** The outputs' tree digest, after the kept copy (if any) is moved into place and made the caller's. */
async function keepAndCollect(
  outDir: string,
  keptDir: string,
  outputs: readonly string[] | undefined,
  run: Run,
  onProgress: BuildRunOptions['onHashProgress']
): Promise<TreeDigest> {
  try {
    if (keptDir !== outDir) {
      await moveDirectory(outDir, keptDir)
      await makeCallers(keptDir, run)
    }
    return await collectOutputs(keptDir, outputs, { onProgress })
  } catch (error) {
    if (keptDir !== outDir) await removeBuildTree(keptDir, run)
    throw error instanceof VerifyError
      ? error
      : unverifiable(`cannot read the outputs the build left in /out: ${(error as Error).message}`)
  }
}

/**
 * docs/protocol.md section 4.1: the CPU the build runs on has the pinned level. Under emulation that CPU is
 * the qemu model (the host's flags do not matter), and qemu-user must be installed.
 */
async function checkBuildCpu(
  ledger: Ledger,
  emulate: PrepareOptions['emulate'],
  readCpuInfo: CpuInfoReader | undefined
): Promise<void> {
  const { isa, cpus } = ledger.build
  if (emulate === undefined) {
    if (isa !== undefined) await checkCpuFeatures(isa, cpus, readCpuInfo)
    return
  }
  if (!modelRunsLevel(emulate.model, isa))
    throw unverifiable(
      `predicate.build.isa: the ledger pins ${isa} but the emulated CPU ${emulate.model.name} is ${emulate.model.level} (under qemu-user): choose a CPU model of ${isa} or above`
    )
  await checkQemu(emulate.qemuPath)
}

async function readNativePrograms(logDir: string): Promise<string[]> {
  const file = path.join(logDir, QEMU_LOG_NAME)
  const stream = createReadStream(file, { encoding: 'utf8' })
  try {
    return await nativePrograms(createInterface({ input: stream, crlfDelay: Infinity }))
  } catch (error) {
    throw unverifiable(
      `emulation: cannot read qemu's system-call log ${file} (${(error as Error).message}): the build's programs cannot be told emulated`
    )
  } finally {
    stream.destroy()
  }
}

/** Checked before anything is hashed: a runaway build's /out is not worth reading. */
async function checkOutputSize(outDir: string, maxBytes: number): Promise<void> {
  const bytes = await bytesUnder(outDir, maxBytes)
  if (bytes > maxBytes)
    throw unverifiable(
      `the build left more than ${formatBytes(maxBytes)} in /out (the output size cap): a build that produces more than the cap failed`,
      undefined,
      { code: 'OUTPUT_TOO_LARGE' }
    )
}

/**
 * The verdict of a finished build container (docs/protocol.md section 6), or undefined when the
 * build succeeded. Every way a build can fail is the runner's or the build's problem, never the
 * model's: unverifiable, with the log tail as detail.
 */
export function containerFailure(
  container: ContainerResult,
  limits: { timeoutSeconds: number; memoryBytes: number }
): VerifyError | undefined {
  const fail = (code: ErrorCode, message: string) =>
    unverifiable(message, container.logTail, { code })
  if (container.timedOut)
    return fail('BUILD_TIMEOUT', `build exceeded timeoutSeconds=${limits.timeoutSeconds}: killed`)
  if (container.daemonLost !== undefined)
    return fail(
      'DAEMON_LOST',
      `the Docker daemon went away during the build (${container.daemonLost}): restart it and rerun`
    )
  if (container.oomKilled)
    return fail(
      'BUILD_OOM',
      `the build ran out of memory (limit ${formatBytes(limits.memoryBytes)}, exit ${container.exitCode}): run on a runner with more memory`
    )
  if (container.exitCode === DOCKER_RUN_FAILED)
    return fail(
      'BUILD_START',
      `docker could not start the build container (exit 125: ${dockerReason(container.logTail)}): does this runner have what the ledger asks (GPUs, platform)?`
    )
  if (container.exitCode !== 0)
    return fail(
      'BUILD_FAILED',
      `the build exited with code ${container.exitCode}: see the log tail`
    )
  return undefined
}

/** `docker run`'s own failure (a bad option, no GPU driver), as opposed to the build's. */
const DOCKER_RUN_FAILED = 125

/** The docker client's own error line (`docker: …`), which a usage hint may follow. */
function dockerReason(log: string): string {
  return log.split('\n').findLast(line => line.startsWith('docker: ')) ?? lastLine(log)
}

async function mustNotExist(target: string): Promise<void> {
  const exists = await lstat(target).then(
    () => true,
    () => false
  )
  if (exists)
    throw unverifiable(
      `the output directory ${target} already exists: choose a new path`,
      undefined,
      { code: 'OUTPUT_EXISTS' }
    )
}

async function moveDirectory(from: string, to: string): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true })
  try {
    await rename(from, to)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error
    await cp(from, to, { recursive: true, preserveTimestamps: true })
  }
}

/** Directories 0777, files gain rw for all (mode bits only: mtimes stay at sourceDateEpoch). */
async function makeWorldWritable(dir: string): Promise<void> {
  await chmod(dir, 0o777)
  for (const dirent of await readdir(dir, { withFileTypes: true })) {
    const child = path.join(dir, dirent.name)
    if (dirent.isDirectory()) await makeWorldWritable(child)
    else if (dirent.isFile()) await chmod(child, ((await stat(child)).mode & 0o777) | 0o666)
  }
}
