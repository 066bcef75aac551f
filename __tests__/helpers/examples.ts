// A published example model (examples/<name>), made the way its publisher makes one: the
// example's files as a git repository, its generated data set, keygen → ledger init → sign →
// build, the build optionally under qemu-user as another CPU (`build --emulate-cpu`).
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { ImageRef } from '../../src/protocol/ledger.js'
import { cli } from './cli.js'
import { succeed } from './fixture.js'
import { makeGitRepo } from './git.js'
import { repoRoot } from './paths.js'
import type { TrainerExample } from './trainer-image.js'

export const EXAMPLE_OUTPUTS = ['model.safetensors', 'config.json']

export interface ExamplePublishOptions {
  example: TrainerExample
  image: ImageRef
  /** The data set directory (`make_dataset.py`'s output, see makeExampleDataset). */
  datasetDir: string
  /** `build.isa`, or 'none' for an unpinned ledger. */
  isa: string
  /** The qemu CPU model the publisher's build runs on (absent: this host's CPU). */
  emulateCpu?: string
  /** `build.env` entries, NAME=VALUE. */
  env?: string[]
}

export interface PublishedExample {
  sbaPath: string
  publicKey: string
  datasetDir: string
  modelDir: string
  modelRoot: string
  /** The CPU model the build ran on under qemu, as `build --json` reports it. */
  emulatedCpu?: string
  /** The build's whole /out (the training's state files too). */
  buildOutDir: string
  /** The build's stderr: phases, the training's log. */
  buildLog: string
}

/** The example's committed files (no caches), as `makeGitRepo` takes them. */
function exampleFiles(example: TrainerExample): Record<string, string> {
  const dir = path.join(repoRoot, 'examples', example)
  return Object.fromEntries(
    readdirSync(dir)
      .filter(name => name !== '__pycache__')
      .map(name => [name, readFileSync(path.join(dir, name), 'utf8')])
  )
}

/** The example's data set, written by its make_dataset.py (standard library only) into `dir`. */
export function makeExampleDataset(example: TrainerExample, dir: string): string {
  execFileSync('python3', [path.join(repoRoot, 'examples', example, 'make_dataset.py'), dir])
  return dir
}

/** Publishes the example into `dir` (empty or absent). Runs one real build, maybe under qemu. */
export async function publishExample(
  dir: string,
  options: ExamplePublishOptions
): Promise<PublishedExample> {
  const sourceDir = path.join(dir, 'source')
  makeGitRepo(sourceDir, exampleFiles(options.example))
  const keyPrefix = path.join(dir, 'publisher')
  await succeed('keygen', '--out', keyPrefix)
  const statementPath = path.join(dir, 'statement.json')
  await succeed(
    'ledger',
    'init',
    '--source-dir',
    sourceDir,
    '--image',
    options.image.reference,
    '--dataset',
    options.datasetDir,
    '--dependency',
    'requirements.lock',
    ...EXAMPLE_OUTPUTS.flatMap(name => ['--output', name]),
    ...(options.env ?? []).flatMap(entry => ['--env', entry]),
    '--isa',
    options.isa,
    '-o',
    statementPath,
    '--',
    'python3',
    'train.py',
    '--data',
    '/data',
    '--out',
    '/out'
  )
  const sbaPath = path.join(dir, 'model.sba.json')
  await succeed('sign', statementPath, '--key', `${keyPrefix}.key`, '-o', sbaPath)
  const buildOutDir = path.join(dir, 'out')
  const built = await cli(
    'build',
    sbaPath,
    '--public-key',
    `${keyPrefix}.pub`,
    '--dataset',
    options.datasetDir,
    '--out',
    buildOutDir,
    '--json',
    ...(options.emulateCpu ? ['--emulate-cpu', options.emulateCpu] : [])
  )
  if (built.code !== 0) throw new Error(`verify-model build exited ${built.code}:\n${built.stderr}`)
  const { root, emulatedCpu } = JSON.parse(built.stdout) as {
    root: string
    emulatedCpu?: { name: string }
  }
  // What the publisher uploads: the declared outputs, not the rest of /out.
  const modelDir = path.join(dir, 'model')
  mkdirSync(modelDir)
  for (const name of EXAMPLE_OUTPUTS)
    copyFileSync(path.join(buildOutDir, name), path.join(modelDir, name))
  return {
    sbaPath,
    publicKey: readFileSync(`${keyPrefix}.pub`, 'utf8'),
    datasetDir: options.datasetDir,
    modelDir,
    modelRoot: root,
    buildOutDir,
    emulatedCpu: emulatedCpu?.name,
    buildLog: built.stderr
  }
}
