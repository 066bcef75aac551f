import path from 'node:path'
import { envMilliseconds } from '../env-settings.js'
import { invalid, messageOf, unverifiable } from '../errors.js'
import type { Run } from '../exec.js'
import { clip } from '../text/sanitize.js'
import type { ImageRef } from '../protocol/ledger.js'

const START_DOCKER = 'start it (scripts/services.sh up) or run on a machine with Docker'

/** Checks that the Docker daemon answers; else `unverifiable` saying why and what to do. */
export async function preflight(run: Run): Promise<void> {
  let result
  try {
    result = await run('docker', ['version', '--format', '{{.Server.Version}}'])
  } catch (error) {
    throw unverifiable(
      `docker is not installed or not on PATH (${messageOf(error)}): install Docker, or ${START_DOCKER}`,
      undefined,
      { code: 'DOCKER_UNAVAILABLE' }
    )
  }
  if (result.exitCode === 0) return
  const reason = lastLine(result.stderr) || `docker version exited with ${result.exitCode}`
  if (/permission denied/i.test(reason) && /docker\.sock/.test(reason))
    throw unverifiable(
      `permission denied on the Docker socket /var/run/docker.sock (${reason}): add the user to the docker group or run with sudo`,
      undefined,
      { code: 'DOCKER_UNAVAILABLE' }
    )
  throw unverifiable(`the Docker daemon does not answer (${reason}): ${START_DOCKER}`, undefined, {
    code: 'DOCKER_UNAVAILABLE'
  })
}

export interface PullOptions {
  /** Further attempts after the first, for errors that may be transient. */
  retries?: number
  /** Delay before the first retry; doubled for each further one. */
  backoffMs?: number
  sleep?: (ms: number) => Promise<void>
  /** A line of pull progress, at most every few seconds (a large image pulls for minutes). */
  onProgress?: (line: string) => void
  now?: () => number
  /** The deadline on the whole pull, retries included (default DEFAULT_PULL_TIMEOUT_MS). */
  timeoutMs?: number
}

/** `docker pull` has no deadline of its own: a registry that never answers would hang the run. */
export const DEFAULT_PULL_TIMEOUT_MS = 30 * 60_000
const PULL_TIMEOUT_VARIABLE = 'VERIFY_MODEL_PULL_TIMEOUT_MS'

// Registry answers that no retry can change.
const PERMANENT_PULL_ERROR =
  /manifest unknown|not found|unauthorized|denied|does not exist|no matching manifest|invalid reference/i

/**
 * Makes the daemon hold the image `<repository>@sha256:<digest>` (never a tag): pulls it for
 * the ledger's platform unless the daemon already has that repo digest, retrying errors that
 * may be transient, then checks the daemon reports exactly that repo digest.
 */
export async function pullImage(
  run: Run,
  image: ImageRef,
  options: PullOptions = {}
): Promise<void> {
  if (await holdsDigest(run, image)) return
  const retries = options.retries ?? 3
  const sleep =
    options.sleep ?? ((ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms)))
  let delay = options.backoffMs ?? 2000
  const timeoutMs =
    options.timeoutMs ??
    envMilliseconds(process.env, PULL_TIMEOUT_VARIABLE, DEFAULT_PULL_TIMEOUT_MS)
  const deadline = new AbortController()
  const timer = setTimeout(() => deadline.abort(), timeoutMs)
  const tooLate = () =>
    unverifiable(
      `environment: docker pull ${image.reference} did not finish within the deadline of ${timeoutMs / 1000} s (${PULL_TIMEOUT_VARIABLE})`
    )
  try {
    for (let attempt = 0; ; attempt++) {
      const progress = new PullProgress(options.onProgress, options.now)
      const result = await run('docker', ['pull', '--platform', image.platform, image.reference], {
        signal: deadline.signal,
        onStdout: chunk => progress.output(chunk)
      })
      if (deadline.signal.aborted) throw tooLate()
      if (result.exitCode === 0) {
        progress.done()
        break
      }
      const reason = lastLine(result.stderr) || `docker pull exited with ${result.exitCode}`
      if (attempt >= retries || PERMANENT_PULL_ERROR.test(reason))
        throw unverifiable(
          `environment: cannot pull ${image.reference} (platform ${image.platform}): ${reason}. ` +
            "Pin the pushed image's repository digest, not a local image ID: docker inspect --format '{{index .RepoDigests 0}}' IMAGE",
          undefined,
          { code: 'IMAGE_PULL' }
        )
      await sleep(delay)
      if (deadline.signal.aborted) throw tooLate()
      delay *= 2
    }
  } finally {
    clearTimeout(timer)
  }
  if (!(await holdsDigest(run, image)))
    throw invalid(
      `environment: image digest mismatch: the daemon does not report ${image.reference} among the pulled image's repo digests`,
      undefined,
      { code: 'IMAGE_DIGEST' }
    )
}

async function holdsDigest(run: Run, image: ImageRef): Promise<boolean> {
  const result = await run('docker', [
    'image',
    'inspect',
    '--format',
    '{{json .RepoDigests}}',
    image.reference
  ])
  if (result.exitCode !== 0) return false
  const wanted = familiarName(`${image.repository}@sha256:${image.sha256}`)
  let repoDigests: unknown
  try {
    repoDigests = JSON.parse(result.stdout)
  } catch {
    throw unverifiable(
      `environment: docker image inspect returned '${clip(result.stdout.trim())}' instead of the repo digests`,
      undefined,
      { code: 'IMAGE_PULL' }
    )
  }
  return (
    Array.isArray(repoDigests) &&
    repoDigests.some(repoDigest => familiarName(String(repoDigest)) === wanted)
  )
}

/** Docker reports Docker Hub names in their short form: `docker.io/library/x` is `x`. */
export function familiarName(reference: string): string {
  const withoutHub = reference.replace(/^(?:index\.)?docker\.io\//, '')
  return withoutHub.replace(/^library\/([^/]+)$/, '$1')
}

/** The last non-empty line: where docker and registries put the reason. */
export function lastLine(text: string): string {
  return text.trim().split('\n').at(-1)?.trim() ?? ''
}

const PROGRESS_INTERVAL_MS = 5000

/**
 * Counts the layers of `docker pull` output (without a terminal it prints one status line per
 * layer event) and reports `N of M layer(s) downloaded, K extracted` every few seconds.
 */
export class PullProgress {
  private readonly downloaded = new Set<string>()
  private readonly extracted = new Set<string>()
  private readonly layers = new Set<string>()
  private pending = ''
  private last: number

  constructor(
    private readonly report: ((line: string) => void) | undefined,
    private readonly now: () => number = Date.now
  ) {
    this.last = now()
  }

  output(chunk: Buffer): void {
    const lines = (this.pending + chunk.toString('utf8')).split('\n')
    this.pending = lines.pop() ?? ''
    for (const line of lines) this.line(line.trim())
    if (this.now() - this.last >= PROGRESS_INTERVAL_MS) this.emit()
  }

  done(): void {
    if (this.pending) this.line(this.pending.trim())
    if (this.layers.size > 0) this.emit()
  }

  private line(line: string): void {
    const match = /^([0-9a-f]{12}): (.+)$/.exec(line)
    if (!match) return
    const [, layer, status] = match
    this.layers.add(layer)
    if (/^(Download complete|Already exists|Pull complete)/.test(status)) this.downloaded.add(layer)
    if (/^(Already exists|Pull complete)/.test(status)) this.extracted.add(layer)
  }

  private emit(): void {
    this.last = this.now()
    this.report?.(
      `pulling: ${this.downloaded.size} of ${this.layers.size} layer(s) downloaded, ${this.extracted.size} extracted`
    )
  }
}

/**
 * The VOLUMEs the image declares (`Config.Volumes`): docker would give each a disk-backed,
 * uncapped anonymous volume, so the contract mounts a capped tmpfs over each instead.
 */
export async function declaredVolumes(run: Run, reference: string): Promise<string[]> {
  const result = await run('docker', [
    'image',
    'inspect',
    '--format',
    '{{json .Config.Volumes}}',
    reference
  ])
  if (result.exitCode !== 0)
    throw unverifiable(
      `environment: docker image inspect ${reference} failed: ${lastLine(result.stderr)}`
    )
  let volumes: unknown
  try {
    volumes = JSON.parse(result.stdout)
  } catch {
    volumes = undefined
  }
  if (volumes === null) return []
  if (typeof volumes !== 'object' || volumes === undefined || Array.isArray(volumes))
    throw unverifiable(
      `environment: docker image inspect returned '${clip(result.stdout.trim())}' instead of the image's volumes`
    )
  return Object.keys(volumes).map(volume => {
    const normalized = path.posix.normalize(volume).replace(/(?<=.)\/+$/, '')
    if (!normalized.startsWith('/'))
      throw invalid(
        `environment: the image declares the VOLUME '${clip(volume)}', not an absolute path`
      )
    return normalized
  })
}
