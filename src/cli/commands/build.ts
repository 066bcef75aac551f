import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Command } from 'commander'
import { removeBuildTree } from '../../reproduce/cleanup.js'
import { verifyAttestation } from '../../protocol/attestation.js'
import { parseStrictJson } from '../../protocol/strict-json.js'
import { parseStatement, type Ledger } from '../../protocol/ledger.js'
import { reproduce, withPreparedBuild } from '../../reproduce/index.js'
import { collectOutputs } from '../../reproduce/outputs.js'
import { buildSegments, stateArchiveName } from '../../segments/run.js'
import {
  printJson,
  readInputFile,
  readTrust,
  UsageError,
  withTrustOptions,
  type TrustOptions
} from '../io.js'
import type { CliContext } from '../main.js'
import { stderrReporter } from '../render.js'

interface BuildOptions extends TrustOptions {
  dataset?: string
  out: string
  states?: string
  allowNetwork?: boolean
  json?: boolean
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
    .option('--json', 'machine-readable output')
    .action(async (file: string, options: BuildOptions) => {
      const ledger = ledgerOf(readInputFile(file, 'SBA or statement'), options)
      if (ledger.build.segments === undefined && options.states !== undefined)
        throw new UsageError(
          '--states is for a ledger with build.segments (ledger init --segments N)'
        )
      if (ledger.build.segments !== undefined && options.states === undefined)
        throw new UsageError(
          `the ledger splits the build into ${ledger.build.segments} segments: give --states DIR to keep the state archives the transcript signs`
        )
      const reporter = stderrReporter(context.io)
      const workDir = await mkdtemp(path.join(os.tmpdir(), 'verify-model-build-'))
      try {
        if (options.states !== undefined) {
          await buildSegmented(
            ledger,
            { ...options, states: options.states },
            workDir,
            context,
            reporter
          )
          return
        }
        const result = await reproduce(
          ledger,
          {
            workDir,
            datasetDir: options.dataset,
            allowNetwork: options.allowNetwork === true,
            keepOutputsIn: path.resolve(options.out),
            onPhase: phase => reporter.phase(phase),
            onLog: chunk => reporter.buildLog(chunk)
          },
          { run: context.run }
        )
        if (options.json)
          printJson(context.io, {
            root: result.outputs.root,
            manifest: result.outputs.manifest,
            out: options.out
          })
        else context.io.stdout(`${result.outputs.root}\n`)
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
      onPhase: phase => reporter.phase(phase)
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
