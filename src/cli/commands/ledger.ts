import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Command } from 'commander'
import type { Run } from '../../exec.js'
import { treeSha256 } from '../../digest/tree.js'
import { createStatement, type BuildSpec } from '../../protocol/ledger.js'
import { ISA_LEVELS, ISA_PLATFORM, isIsaLevel, type IsaLevel } from '../../protocol/isa.js'
import { inertLine } from '../../workflow-commands.js'
import { asUsageError, collect, UsageError } from '../io.js'
import type { CliContext } from '../main.js'

interface LedgerInitOptions {
  sourceUri?: string
  commit?: string
  sourceDir?: string
  image: string
  platform?: string
  dataset?: string
  datasetUri?: string
  dependency: string[]
  output: string[]
  env: string[]
  sourceDateEpoch?: string
  workdir?: string
  network?: string
  timeoutSeconds?: string
  cpus?: string
  gpus?: string
  segments?: string
  isa?: string
  out?: string
}

/** Runs on every GitHub-hosted x64 runner (PROTOCOL.md section 2). */
const DEFAULT_ISA: IsaLevel = 'x86-64-v3'

export function registerLedger(program: Command, context: CliContext): void {
  const ledger = program.command('ledger').description('Write build ledgers (in-toto statements).')
  ledger
    .command('init')
    .description('Write a build ledger statement from flags; the build command follows `--`.')
    .argument('<command...>', 'the build command and its arguments, after --')
    .option(
      '--source-uri <uri>',
      'git+https://…, git+ssh://… or git+file://… (default with --source-dir: its git+file:// URL)'
    )
    .option('--commit <sha>', 'full commit id (default with --source-dir: its HEAD)')
    .option(
      '--source-dir <dir>',
      'a local clone: reads HEAD, the commit time and --dependency files'
    )
    .requiredOption('--image <ref>', 'the pinned image, REGISTRY/REPOSITORY@sha256:DIGEST')
    .option('--platform <os/arch>', 'image platform (default linux/amd64)')
    .option('--dataset <dir>', 'the dataset directory: its treeSha256 root is computed')
    .option('--dataset-uri <url>', 'where verifiers can download the dataset archive')
    .option(
      '--dependency <path>',
      'a lock file in the source tree to pin by sha256; repeatable',
      collect,
      []
    )
    .option(
      '--output <name>',
      'a declared output under /out; repeatable (default: all of /out)',
      collect,
      []
    )
    .option('--env <NAME=VALUE>', 'an environment variable for the build; repeatable', collect, [])
    .option('--source-date-epoch <seconds>', "SOURCE_DATE_EPOCH (default: the commit's time)")
    .option('--workdir <dir>', 'working directory relative to /src')
    .option('--network <none|bridge>', 'build network')
    .option('--timeout-seconds <n>', 'build time limit')
    .option('--cpus <n>', 'CPU set size and thread count')
    .option('--gpus <none|all>', 'GPUs for the build')
    .option(
      '--segments <n>',
      'split the build into n resumable runs (2 to 100000; PROTOCOL.md section 9)'
    )
    .option(
      '--isa <level>',
      `the CPU level the build is pinned to: ${ISA_LEVELS.join(', ')}, or none (unpinned) (default on ${ISA_PLATFORM}: ${DEFAULT_ISA})`
    )
    .option('-o, --out <file>', 'write the statement here instead of stdout')
    .action(async (command: string[], options: LedgerInitOptions) => {
      if (options.isa === 'none')
        context.io.stderr(`${inertLine(`warning: ${UNPINNED_WARNING}`)}\n`)
      const statement = await statementFromFlags(command, options, context.run).catch(error => {
        throw asUsageError(error)
      })
      if (options.out) writeFileSync(options.out, statement)
      else context.io.stdout(Buffer.from(statement).toString('utf8'))
    })
}

const UNPINNED_WARNING =
  "--isa none writes an unpinned ledger: the image's libraries pick their kernels from each runner's CPU, so verifiers on another CPU can get different bytes (mismatch); pin a level (--isa x86-64-v3) unless `verify-model build --cross-check` says the build is portable"

/** --isa: a level, `none`, or by default x86-64-v3 on linux/amd64 (no other platform has levels). */
function isaFlag(value: string | undefined, platform: string | undefined): IsaLevel | undefined {
  if (value === undefined)
    return (platform ?? ISA_PLATFORM) === ISA_PLATFORM ? DEFAULT_ISA : undefined
  if (value === 'none') return undefined
  if (!isIsaLevel(value))
    throw new UsageError(`--isa must be one of ${ISA_LEVELS.join(', ')} or none, got '${value}'`)
  return value
}

async function statementFromFlags(
  command: string[],
  options: LedgerInitOptions,
  run: Run
): Promise<Uint8Array> {
  const sourceDir = options.sourceDir && path.resolve(options.sourceDir)
  const gitCommit =
    options.commit ?? (sourceDir ? await git(run, sourceDir, ['rev-parse', 'HEAD']) : undefined)
  if (!gitCommit) throw new UsageError('give --commit, or --source-dir to read HEAD')
  const sourceUri = options.sourceUri ?? (sourceDir ? `git+file://${sourceDir}` : undefined)
  if (!sourceUri)
    throw new UsageError('give --source-uri (or --source-dir for a local git+file:// source)')
  const sourceDateEpoch = options.sourceDateEpoch
    ? integerFlag('--source-date-epoch', options.sourceDateEpoch)
    : sourceDir
      ? Number(await git(run, sourceDir, ['show', '-s', '--format=%ct', gitCommit]))
      : undefined
  if (sourceDateEpoch === undefined)
    throw new UsageError('give --source-date-epoch, or --source-dir to use the commit time')
  if (options.datasetUri && !options.dataset) {
    throw new UsageError(
      '--dataset-uri needs --dataset DIR: the ledger pins the root of its contents'
    )
  }
  if (options.dependency.length > 0 && !sourceDir) {
    throw new UsageError('--dependency needs --source-dir to compute the file digests')
  }
  return createStatement({
    sourceUri,
    gitCommit,
    dependencies: await Promise.all(
      options.dependency.map(async name => ({
        name,
        sha256: await committedFileSha256(run, sourceDir!, gitCommit, name)
      }))
    ),
    dataset: options.dataset
      ? { uri: options.datasetUri, treeSha256: (await treeSha256(options.dataset)).root }
      : undefined,
    image: { ...parseImageFlag(options.image), platform: options.platform },
    build: {
      command,
      env: parseEnvFlags(options.env),
      sourceDateEpoch,
      outputs: options.output.length > 0 ? options.output : undefined,
      workdir: options.workdir,
      network: options.network as BuildSpec['network'] | undefined,
      timeoutSeconds: optionalInteger('--timeout-seconds', options.timeoutSeconds),
      cpus: optionalInteger('--cpus', options.cpus),
      gpus: options.gpus as BuildSpec['gpus'] | undefined,
      segments: optionalInteger('--segments', options.segments),
      isa: isaFlag(options.isa, options.platform)
    }
  })
}

/** The file as committed (not as in the working tree): what verifiers will check out. */
async function committedFileSha256(
  run: Run,
  dir: string,
  commit: string,
  name: string
): Promise<string> {
  const type = await git(run, dir, ['cat-file', '-t', `${commit}:${name}`]).catch(() => '')
  if (type !== 'blob') throw new UsageError(`--dependency ${name}: not a file in commit ${commit}`)
  const hash = createHash('sha256')
  const result = await run('git', ['-C', dir, 'cat-file', 'blob', `${commit}:${name}`], {
    onStdout: chunk => hash.update(chunk)
  })
  if (result.exitCode !== 0) throw new UsageError(`--dependency ${name}: ${result.stderr.trim()}`)
  return hash.digest('hex')
}

async function git(run: Run, dir: string, args: string[]): Promise<string> {
  const result = await run('git', ['-C', dir, ...args])
  if (result.exitCode !== 0)
    throw new UsageError(`git ${args.join(' ')} in ${dir} failed: ${result.stderr.trim()}`)
  return result.stdout.trim()
}

function parseImageFlag(reference: string): { uri: string; sha256: string } {
  const match = /^([^@\s]+)@sha256:([0-9a-f]{64})$/.exec(reference)
  if (!match) {
    throw new UsageError(
      `--image must be REGISTRY/REPOSITORY@sha256:<64 hex>, got '${reference}' (pin by digest, never a tag)`
    )
  }
  return { uri: `oci://${match[1]}`, sha256: match[2] }
}

function parseEnvFlags(pairs: string[]): Record<string, string> {
  return Object.fromEntries(
    pairs.map(pair => {
      const separator = pair.indexOf('=')
      if (separator <= 0) throw new UsageError(`--env takes NAME=VALUE, got '${pair}'`)
      return [pair.slice(0, separator), pair.slice(separator + 1)]
    })
  )
}

function integerFlag(flag: string, value: string): number {
  const number = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number)) {
    throw new UsageError(`${flag} must be a whole number, got '${value}'`)
  }
  return number
}

function optionalInteger(flag: string, value: string | undefined): number | undefined {
  return value === undefined ? undefined : integerFlag(flag, value)
}
