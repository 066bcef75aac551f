import { execFile, execFileSync } from 'node:child_process'
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { promisify } from 'node:util'
import type { ImageRef } from '../../src/protocol/ledger.js'
import { describeRequiring } from './requirements.js'

const execFileAsync = promisify(execFile)

/** The registry `scripts/services.sh up` runs (loopback: docker allows it without TLS). */
export const localRegistry = '127.0.0.1:5000'
const SERVICES_HINT = 'run scripts/services.sh up'

let available: boolean | undefined

/** Whether the Docker daemon answers (checked once per test file). */
export function dockerAvailable(): boolean {
  if (available === undefined) {
    try {
      execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], {
        stdio: 'ignore',
        timeout: 30_000
      })
      available = true
    } catch {
      available = false
    }
  }
  return available
}

/**
 * `describe` for tests that need the real Docker daemon. Without Docker: skipped on a
 * developer's machine, a failing test under CI (`CI=true`), so CI never passes by skipping.
 */
export function describeDocker(name: string, body: () => void): void {
  describeRequiring(name, dockerAvailable, `Docker is required in CI: ${SERVICES_HINT}`, body)
}

/** Runs `docker ARGS` and returns its trimmed stdout. */
export const docker = (...args: string[]) =>
  execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()

/** Whether a container of that name exists, in any state. */
export const containerExists = (name: string) =>
  docker('ps', '--all', '--quiet', '--filter', `name=^/${name}$`) !== ''

/**
 * Calls `then` with the build container's name once `output` (the verifier's stdout or stderr)
 * has named it (`verify-model-<12 hex>: `) and docker reports it running.
 */
export function whenBuilding(output: Readable, then: (name: string) => void): void {
  let seen = ''
  const watch = (chunk: Buffer | string) => {
    seen += chunk.toString()
    const name = /\b(verify-model-[0-9a-f]{12}): /.exec(seen)?.[1]
    if (name === undefined) return
    output.off('data', watch)
    const poll = setInterval(() => {
      if (
        containerExists(name) &&
        docker('inspect', '--format', '{{.State.Running}}', name) === 'true'
      ) {
        clearInterval(poll)
        then(name)
      }
    }, 200)
    // A verifier that ends before its container runs stops the polling with it.
    output.once('close', () => clearInterval(poll))
  }
  output.on('data', watch)
}

const built = new Map<string, Promise<ImageRef>>()

/**
 * A tiny image pinned by digest in the local registry: a rootfs of Debian's static busybox
 * (`/bin/busybox` and a symlink per applet), `/etc/passwd` with uid 1000, empty `/tmp`,
 * `/src`, `/data`, `/out`; no ENV, no ENTRYPOINT. Built once and reused while the registry
 * holds the tag.
 */
export function buildBusyboxImage(tag = 'v1', changes: string[] = []): Promise<ImageRef> {
  let image = built.get(tag)
  if (image === undefined) {
    image = pinnedBusyboxImage(tag, changes)
    built.set(tag, image)
  }
  return image
}

/** `changes` are Dockerfile instructions applied at import (`VOLUME ["/vol"]`): give them a tag of their own. */
async function pinnedBusyboxImage(tag: string, changes: string[]): Promise<ImageRef> {
  const repository = `${localRegistry}/verify-model-test/busybox`
  const tagged = `${repository}:${tag}`
  const digest = (await digestInRegistry(repository, tag)) ?? (await importAndPush(tagged, changes))
  return {
    uri: `oci://${repository}`,
    repository,
    sha256: digest,
    reference: `${repository}@sha256:${digest}`,
    platform: 'linux/amd64'
  }
}

/** The manifest digest the registry has for the tag, if any. */
async function digestInRegistry(repository: string, tag: string): Promise<string | undefined> {
  const name = repository.slice(localRegistry.length + 1)
  const response = await fetch(`http://${localRegistry}/v2/${name}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' }
  }).catch((error: Error) => {
    throw new Error(
      `the registry on ${localRegistry} does not answer (${error.message}): ${SERVICES_HINT}`
    )
  })
  if (!response.ok) return undefined
  return /^sha256:([0-9a-f]{64})$/.exec(response.headers.get('docker-content-digest') ?? '')?.[1]
}

async function importAndPush(tagged: string, changes: string[]): Promise<string> {
  const busybox = '/bin/busybox'
  try {
    execFileSync('dpkg-query', ['--show', 'busybox-static'], { stdio: 'ignore' })
  } catch {
    throw new Error(`the test image needs Debian's busybox-static at ${busybox}: ${SERVICES_HINT}`)
  }
  const work = await mkdtemp(path.join(os.tmpdir(), 'verify-model-busybox-'))
  try {
    const root = path.join(work, 'rootfs')
    for (const dir of ['bin', 'etc', 'tmp', 'src', 'data', 'out'])
      await mkdir(path.join(root, dir), { recursive: true })
    await chmod(path.join(root, 'tmp'), 0o1777)
    await copyFile(busybox, path.join(root, 'bin/busybox'))
    await chmod(path.join(root, 'bin/busybox'), 0o755)
    const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
    for (const applet of applets)
      if (applet !== 'busybox') await symlink('busybox', path.join(root, 'bin', applet))
    await writeFile(
      path.join(root, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\nbuild:x:1000:1000:build:/tmp:/bin/sh\n'
    )
    await writeFile(path.join(root, 'etc/group'), 'root:x:0:\nbuild:x:1000:\n')
    const tarball = path.join(work, 'rootfs.tar')
    await execFileAsync('tar', [
      '--create',
      '--file',
      tarball,
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '--directory',
      root,
      '.'
    ])
    await execFileAsync('docker', [
      'import',
      ...changes.flatMap(change => ['--change', change]),
      tarball,
      tagged
    ])
    const pushed = await execFileAsync('docker', ['push', tagged])
    const digest = /digest: sha256:([0-9a-f]{64})/.exec(pushed.stdout)?.[1]
    if (digest === undefined)
      throw new Error(`docker push ${tagged} printed no digest:\n${pushed.stdout}`)
    return digest
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
