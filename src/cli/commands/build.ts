import { mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Command } from 'commander'
import { removeBuildTree } from '../../reproduce/cleanup.js'
import { verifyAttestation } from '../../protocol/attestation.js'
import { parseStrictJson } from '../../protocol/strict-json.js'
import { parseStatement, type Ledger } from '../../protocol/ledger.js'
import { reproduce, type ReproduceOptions } from '../../reproduce/index.js'
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
  allowNetwork?: boolean
  allowGpu?: boolean
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
    .option('--allow-network', "allow network when the ledger asks for 'bridge'")
    .option('--allow-gpu', "allow GPU devices and drivers when the ledger asks for 'gpus: all'")
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
      const reporter = stderrReporter(context.io)
      const workDir = await mkdtemp(path.join(os.tmpdir(), 'verify-model-build-'))
      context.scope?.track(workDir)
      try {
        if (ledger.build.isa === undefined) reporter.info(`note: ${UNPINNED_ISA_NOTE}`)
        const crossCheckCpu = options.crossCheck ? await chooseCrossCheckCpu(ledger) : undefined
        const buildOptions: ReproduceOptions = {
          workDir,
          datasetDir: options.dataset,
          allowNetwork: options.allowNetwork === true,
          allowGpu: options.allowGpu === true,
          runId: context.scope?.id,
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
