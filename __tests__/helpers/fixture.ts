// A published model made the way a publisher makes one, with the project's own CLI in-process:
// a git repository with a build script, a dataset, keygen → ledger init → sign → build.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { ImageRef } from '../../src/protocol/ledger.js'
import { spawnNode } from './action-runner.js'
import { cli } from './cli.js'
import { makeGitRepo } from './git.js'
import { repoRoot } from './paths.js'

export interface PublishOptions {
  /** A pinned image with a POSIX `sh` and `cat` (e.g. `buildBusyboxImage()`). */
  image: ImageRef
  /** Written to the ledger as `dataset.uri`, where verifiers may download `datasetArchive`. */
  datasetUri?: string
  /** The source's `build.sh` (default BUILD_SCRIPT); it must write OUTPUTS from /data. */
  buildScript?: string
  /** `ledger init --isa` (default: the CLI's default, x86-64-v3). */
  isa?: string
  /** `build --emulate-cpu`: the publisher's build runs under qemu-user as this CPU model. */
  emulateCpu?: string
  /**
   * The publisher's /proc/cpuinfo: the build then runs the CLI bundle with this file mounted
   * there (a CPU level this machine may lack, like x86-64-v4, checked against it).
   */
  cpuInfo?: string
}

export interface PublishedModel {
  sourceDir: string
  commit: string
  /** The dataset directory the ledger's `treeSha256` was computed over. */
  datasetDir: string
  /** `tar -czf` of the dataset directory's contents at the archive's top level. */
  datasetArchive: string
  /** SPKI PEM, as a workflow's `public-key` input holds it. */
  publicKey: string
  publicKeyPath: string
  privateKeyPath: string
  keyId: string
  statementPath: string
  sbaPath: string
  /** The declared outputs, in ledger order. */
  outputs: string[]
  /** What the publisher's build left in /out: the model as published. */
  modelDir: string
  /** The treeSha256 root of `modelDir`. */
  modelRoot: string
}

/** The build: its outputs depend on the dataset and on the contract's environment. */
export const BUILD_SCRIPT = [
  'set -eu',
  'cat /data/train.csv > /out/weights.bin',
  'printf \'{"sourceDateEpoch": %s}\\n\' "$SOURCE_DATE_EPOCH" > /out/config.json',
  ''
].join('\n')

export const OUTPUTS = ['weights.bin', 'config.json']

/** Publishes a model into `dir` (which must be empty or absent). Runs one real Docker build. */
export async function publishModel(dir: string, options: PublishOptions): Promise<PublishedModel> {
  mkdirSync(dir, { recursive: true })
  const sourceDir = path.join(dir, 'source')
  const commit = makeGitRepo(sourceDir, {
    'build.sh': options.buildScript ?? BUILD_SCRIPT,
    'README.md': '# tiny\n'
  })

  const datasetDir = path.join(dir, 'dataset')
  mkdirSync(datasetDir)
  writeFileSync(
    path.join(datasetDir, 'train.csv'),
    Array.from({ length: 64 }, (_, i) => `${i},${(i * 7919) % 101}`).join('\n') + '\n'
  )
  const datasetArchive = path.join(dir, 'data.tar.gz')
  execFileSync('tar', ['-C', datasetDir, '-czf', datasetArchive, '.'])

  const keyPrefix = path.join(dir, 'publisher')
  const keyId = (await succeed('keygen', '--out', keyPrefix)).trim()

  const statementPath = path.join(dir, 'statement.json')
  await succeed(
    'ledger',
    'init',
    '--source-dir',
    sourceDir,
    '--image',
    options.image.reference,
    '--dataset',
    datasetDir,
    ...(options.datasetUri ? ['--dataset-uri', options.datasetUri] : []),
    ...OUTPUTS.flatMap(name => ['--output', name]),
    ...(options.isa ? ['--isa', options.isa] : []),
    '-o',
    statementPath,
    '--',
    'sh',
    'build.sh'
  )

  const sbaPath = path.join(dir, 'model.sba.json')
  await succeed('sign', statementPath, '--key', `${keyPrefix}.key`, '-o', sbaPath)

  const modelDir = path.join(dir, 'model')
  const publicKeyPath = `${keyPrefix}.pub`
  const buildArgs = [
    'build',
    sbaPath,
    '--public-key',
    publicKeyPath,
    '--dataset',
    datasetDir,
    '--out',
    modelDir,
    ...(options.emulateCpu ? ['--emulate-cpu', options.emulateCpu] : [])
  ]
  const built =
    options.cpuInfo === undefined
      ? await succeed(...buildArgs)
      : await succeedInBundle(buildArgs, dir, options.cpuInfo)

  return {
    sourceDir,
    commit,
    datasetDir,
    datasetArchive,
    publicKey: readFileSync(publicKeyPath, 'utf8'),
    publicKeyPath,
    privateKeyPath: `${keyPrefix}.key`,
    keyId,
    statementPath,
    sbaPath,
    outputs: OUTPUTS,
    modelDir,
    modelRoot: built.trim()
  }
}

/** Runs `node dist/cli/index.js ARGS` with `cpuInfo` as its /proc/cpuinfo; returns stdout. */
async function succeedInBundle(args: string[], dir: string, cpuInfo: string): Promise<string> {
  const cpuInfoFile = path.join(dir, 'cpuinfo')
  writeFileSync(cpuInfoFile, cpuInfo)
  const result = await spawnNode(path.join(repoRoot, 'dist/cli/index.js'), {
    args,
    cwd: dir,
    env: process.env,
    timeoutMs: 120_000,
    cpuInfoFile
  })
  if (result.exitCode !== 0)
    throw new Error(`verify-model ${args[0]} exited ${result.exitCode}:\n${result.stderr}`)
  return result.stdout
}

/** Runs a CLI command that must succeed; returns its stdout. */
export async function succeed(...argv: string[]): Promise<string> {
  const result = await cli(...argv)
  if (result.code !== 0) {
    throw new Error(`verify-model ${argv[0]} exited ${result.code}:\n${result.stderr}`)
  }
  return result.stdout
}
