import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Command } from 'commander'
import { removeBuildTree } from '../../reproduce/cleanup.js'
import { verifyAttestation } from '../../protocol/attestation.js'
import { parseStrictJson } from '../../protocol/strict-json.js'
import { parseStatement, type Ledger } from '../../protocol/ledger.js'
import { reproduce, withPreparedBuild, type ReproduceOptions } from '../../reproduce/index.js'
import { collectOutputs } from '../../reproduce/outputs.js'
import { buildSegments, stateArchiveName } from '../../segments/run.js'
import {
  cpuModelNames,
  DEFAULT_QEMU_PATH,
  findCpuModel,
  type QemuCpuModel
} from '../../reproduce/emulation.js'
import { chooseCrossCheckCpu, crossCheck } from '../../verify/cross-check.js'
import { UNPINNED_ISA_NOTE } from '../../verify/report.js'
import {
  printJson,
  readInputFile,
  readTrust,
  UsageError,
  withTrustOptions,
  type TrustOptions
} from '../io.js'
import { EXIT_FAILED, type CliContext } from '../main.js'
import { renderCrossCheckText, stderrReporter } from '../render.js'

interface BuildOptions extends TrustOptions {
  dataset?: string
  out: string
  states?: string
  allowNetwork?: boolean
  json?: boolean
  emulateCpu?: string
  crossCheck?: boolean
  qemu: string
}

export function registerBuild(program: Command, context: CliContext): void {
  withTrustOptions(program.command('build'))
    .description(
      'Run the build of a statement or SBA under the container contract and write its outputs (publishers produce their weights with this).'
    )
    .argument(
      '<sba-or-statement>',
      'an SBA (its signature is verified first) or an unsigned statement'
    )
    .option('--dataset <dir>', "the dataset directory (default: download the ledger's dataset.uri)")
    .option('--out <dir>', 'where to write the outputs (must not exist yet)', 'out')
    .option(
      '--states <dir>',
      'a segmented build (build.segments): where each state is kept as state-<i>.tar'
    )
    .option('--allow-network', "allow network when the ledger asks for 'bridge'")
    .option(
      '--emulate-cpu <model>',
      'build under qemu-user as this CPU model (e.g. Nehalem, Haswell): publish as if on that CPU'
    )
    .option(
      '--cross-check',
      "then build again under qemu-user as a CPU of the ledger's build.isa from the other vendor, and compare the roots (exit 1 when not portable or inconclusive)"
    )
    .option('--qemu <path>', 'the qemu-user emulator for x86-64', DEFAULT_QEMU_PATH)
    .option('--json', 'machine-readable output')
    .action(async (file: string, options: BuildOptions) => {
      const ledger = ledgerOf(readInputFile(file, 'SBA or statement'), options)
      const emulated = emulatedCpu(options)
      checkSegmentOptions(ledger, options)
      const reporter = stderrReporter(context.io)
      const workDir = await mkdtemp(path.join(os.tmpdir(), 'verify-model-build-'))
      try {
        if (ledger.build.isa === undefined) reporter.info(`note: ${UNPINNED_ISA_NOTE}`)
        if (options.states !== undefined) {
          const emulate = emulated && { qemuPath: options.qemu, model: emulated }
          await buildSegmented(
            ledger,
            { ...options, states: options.states },
            emulate,
            workDir,
            context,
            reporter
          )
          return
        }
        const crossCheckCpu = options.crossCheck ? await chooseCrossCheckCpu(ledger) : undefined
        const buildOptions: ReproduceOptions = {
          workDir,
          datasetDir: options.dataset,
          allowNetwork: options.allowNetwork === true,
          onPhase: phase => reporter.phase(phase),
          onLog: chunk => reporter.buildLog(chunk)
        }
        const out = path.resolve(options.out)
        const result = await reproduce(
          ledger,
          {
            ...buildOptions,
            keepOutputsIn: out,
            ...(emulated ? { emulate: { qemuPath: options.qemu, model: emulated } } : {})
          },
          { run: context.run }
        )
        const checked =
          crossCheckCpu &&
          (await crossCheck(
            ledger,
            { outputs: result.outputs, outDir: out },
            crossCheckCpu,
            {
              ...buildOptions,
              qemuPath: options.qemu,
              emulatedOutDir: path.join(workDir, 'cross-check')
            },
            { run: context.run }
          ))
        if (emulated && result.nativePrograms?.length)
          reporter.info(
            `note: the build exec'd ${result.nativePrograms.join(', ')}, which ran on this machine's CPU, not the emulated ${emulated.name}: run the interpreter itself as build.command`
          )
        reporter.end()
        if (options.json)
          printJson(context.io, {
            root: result.outputs.root,
            manifest: result.outputs.manifest,
            out: options.out,
            isa: ledger.build.isa ?? null,
            ...(emulated
              ? { emulatedCpu: emulated, nativePrograms: result.nativePrograms ?? [] }
              : {}),
            ...(checked ? { crossCheck: checked } : {})
          })
        else {
          context.io.stdout(`${result.outputs.root}\n`)
          if (checked) context.io.stdout(renderCrossCheckText(checked, ledger.build.isa))
        }
        if (checked && checked.verdict !== 'portable') context.exitCode = EXIT_FAILED
      } finally {
        reporter.end()
        await removeBuildTree(workDir, context.run)
      }
    })
}

/** Runs all N segments in order; the model is state N's declared outputs, copied to --out. */
async function buildSegmented(
  ledger: Ledger,
  options: BuildOptions & { states: string },
  emulate: ReproduceOptions['emulate'],
  workDir: string,
  context: CliContext,
  reporter: ReturnType<typeof stderrReporter>
): Promise<void> {
  const out = path.resolve(options.out)
  if (existsSync(out))
    throw new UsageError(`--out ${options.out} already exists: choose a new path`)
  const segments = ledger.build.segments as number
  const started = Date.now()
  await withPreparedBuild(
    ledger,
    {
      workDir,
      datasetDir: options.dataset,
      allowNetwork: options.allowNetwork === true,
      onPhase: phase => reporter.phase(phase),
      ...(emulate ? { emulate } : {})
    },
    { run: context.run },
    async prepared => {
      const built = await buildSegments(prepared, {
        segments,
        statesDir: path.resolve(options.states),
        workDir: path.join(workDir, 'segments'),
        run: context.run,
        onSegmentStart: index => reporter.phase(`segment ${index}`),
        onSegmentDone: (index, root, durationMs) =>
          reporter.info(
            `segment ${index}/${segments}: S_${index} = ${root} (${(durationMs / 1000).toFixed(1)} s) → ${path.join(options.states, stateArchiveName(index))}`
          ),
        onLog: chunk => reporter.buildLog(chunk)
      })
      reporter.end()
      const model = await collectOutputs(built.lastStateDir, ledger.build.outputs)
      await copyOutputs(built.lastStateDir, ledger.build.outputs, out)
      if (options.json)
        printJson(context.io, {
          root: model.root,
          manifest: model.manifest,
          out: options.out,
          states: built.states,
          statesDir: options.states,
          durationMs: Date.now() - started
        })
      else context.io.stdout(`${model.root}\n`)
    }
  )
}

/** The model: state N restricted to build.outputs (all of it when outputs is absent). */
async function copyOutputs(
  stateDir: string,
  outputs: readonly string[] | undefined,
  out: string
): Promise<void> {
  if (outputs === undefined) return cp(stateDir, out, { recursive: true, errorOnExist: true })
  await mkdir(out, { recursive: true })
  for (const output of outputs) {
    const target = path.join(out, output)
    await mkdir(path.dirname(target), { recursive: true })
    await cp(path.join(stateDir, output), target, { recursive: true, errorOnExist: true })
  }
}

/** --states goes with build.segments, both ways; a segmented build is not cross-checked yet. */
function checkSegmentOptions(ledger: Ledger, options: BuildOptions): void {
  const { segments } = ledger.build
  if (segments === undefined && options.states !== undefined)
    throw new UsageError('--states is for a ledger with build.segments (ledger init --segments N)')
  if (segments !== undefined && options.states === undefined)
    throw new UsageError(
      `the ledger splits the build into ${segments} segments: give --states DIR to keep the state archives the transcript signs`
    )
  if (segments !== undefined && options.crossCheck)
    throw new UsageError(
      '--cross-check does not run segmented builds yet: cross-check a one-run ledger of the same training, or build with --emulate-cpu'
    )
}

/** --emulate-cpu's model; --cross-check picks its own, so the two do not combine. */
function emulatedCpu(options: BuildOptions): QemuCpuModel | undefined {
  if (options.emulateCpu === undefined) return undefined
  if (options.crossCheck)
    throw new UsageError(
      '--cross-check chooses its own CPU model and compares with a native build: give either --emulate-cpu or --cross-check'
    )
  const model = findCpuModel(options.emulateCpu)
  if (model === undefined)
    throw new UsageError(
      `--emulate-cpu: unknown CPU model '${options.emulateCpu}' (known: ${cpuModelNames()})`
    )
  return model
}

function ledgerOf(bytes: Buffer, options: BuildOptions): Ledger {
  if (!looksLikeEnvelope(bytes)) {
    if (options.publicKey.length > 0)
      throw new UsageError('--public-key was given but the file is a statement, not an SBA')
    return parseStatement(bytes)
  }
  if (options.publicKey.length === 0)
    throw new UsageError('an SBA needs --public-key to verify its signature before building')
  const { keys, threshold } = readTrust(options)
  return verifyAttestation(bytes, keys, threshold).ledger
}

/** A DSSE envelope has a top-level payloadType; an in-toto statement has _type. */
function looksLikeEnvelope(bytes: Buffer): boolean {
  const document = parseStrictJson(bytes, 'input')
  return typeof document === 'object' && document !== null && 'payloadType' in document
}
