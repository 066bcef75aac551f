import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import type { ImageRef } from '../../src/protocol/ledger.js'
import { repoRoot } from './paths.js'

const execFileAsync = promisify(execFile)

/** The examples scripts/build-trainer-image.sh builds an image for. */
export type TrainerExample = 'tiny-model' | 'torch-cnn'

const built = new Map<TrainerExample, Promise<ImageRef>>()

/**
 * An example's trainer image, pinned by digest in the local registry. Instant when the registry
 * has it; a cold build (debootstrap) takes minutes, a re-import of the machine's cached rootfs
 * tarball about a minute (scripts/build-trainer-image.sh).
 */
export function trainerImage(example: TrainerExample): Promise<ImageRef> {
  let image = built.get(example)
  if (image === undefined) {
    image = buildTrainerImage(example)
    built.set(example, image)
  }
  return image
}

async function buildTrainerImage(example: TrainerExample): Promise<ImageRef> {
  const script = path.join(repoRoot, 'scripts/build-trainer-image.sh')
  const { stdout } = await execFileAsync('bash', [script, example], {
    maxBuffer: 16 * 1024 * 1024
  })
  const reference = stdout.trimEnd().split('\n').pop() ?? ''
  const match = /^(.+)@sha256:([0-9a-f]{64})$/.exec(reference)
  if (match === null)
    throw new Error(`${script} ${example} printed no pinned image: '${reference}'`)
  const [, repository, sha256] = match
  return { uri: `oci://${repository}`, repository, sha256, reference, platform: 'linux/amd64' }
}
