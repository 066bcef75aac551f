import { envBytes, envMilliseconds } from '../env-settings.js'
import { invalid, messageOf, unverifiable } from '../errors.js'
import type { Run } from '../exec.js'
import type { ImageRef } from '../protocol/ledger.js'
import { clip } from '../text/sanitize.js'
import { throughputWindowMs, watchThroughput } from '../throughput.js'
import { connectDockerApi, type DockerApi, type PullMessage } from './docker-api.js'
import { lastLine } from './docker.js'
import { formatBytes } from './limits.js'
import { registryAuthHeader, registryOf, type RegistryAuthEnv } from './registry-auth.js'

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
  /**
   * The least an attempt may move per second, layer bytes received plus extracted, over
   * windows (throughputWindowMs); default VERIFY_MODEL_MIN_PULL_RATE or 16 KiB/s, 0 for none.
   */
  minBytesPerSecond?: number
  /** Where the settings and the Docker configuration are read (default: process.env). */
  env?: NodeJS.ProcessEnv
  /** The daemon's endpoint, and its API when it has one here (default: connectDockerApi). */
  daemon?: { api?: DockerApi; endpoint: string }
}

/** `docker pull` has no deadline of its own: a registry that never answers would hang the run. */
export const DEFAULT_PULL_TIMEOUT_MS = 30 * 60_000
const PULL_TIMEOUT_VARIABLE = 'VERIFY_MODEL_PULL_TIMEOUT_MS'
const PULL_RATE_VARIABLE = 'VERIFY_MODEL_MIN_PULL_RATE'

// Registry answers that no retry can change.
const PERMANENT_PULL_ERROR =
  /manifest unknown|not found|unauthorized|no basic auth credentials|denied|does not exist|no matching manifest|invalid reference/i

/** One pull attempt: undefined when it succeeded, else the reason it failed. */
type Attempt = (signal: AbortSignal, progress: PullProgress) => Promise<string | undefined>

/**
 * Makes the daemon hold the image `<repository>@sha256:<digest>` (never a tag): pulls it for
 * the ledger's platform unless the daemon already has that repo digest, retrying errors that
 * may be transient, then checks the daemon reports exactly that repo digest. The pull goes
 * through the daemon's API, whose byte counts the minimum throughput is measured on; a daemon
 * reached otherwise (tcp, ssh) is pulled from with `docker pull` under the deadline alone.
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
  const env = options.env ?? process.env
  const timeoutMs =
    options.timeoutMs ?? envMilliseconds(env, PULL_TIMEOUT_VARIABLE, DEFAULT_PULL_TIMEOUT_MS)
  const minBytesPerSecond =
    options.minBytesPerSecond ?? envBytes(env, PULL_RATE_VARIABLE, 16 * 1024)
  const daemon = options.daemon ?? (await connectDockerApi(run))
  let attempt: Attempt
  if (daemon.api) {
    attempt = await apiAttempt(daemon.api, image, { run, env })
  } else {
    options.onProgress?.(
      `pull throughput not checked: the Docker endpoint ${clip(daemon.endpoint)} is not a unix socket (only ${PULL_TIMEOUT_VARIABLE} applies)`
    )
    attempt = cliAttempt(run, image)
  }
  const deadline = AbortSignal.timeout(timeoutMs)
  const tooLate = () =>
    unverifiable(
      `environment: docker pull ${image.reference} did not finish within the deadline of ${timeoutMs / 1000} s (${PULL_TIMEOUT_VARIABLE})`
    )
  for (let tries = 0; ; tries++) {
    const progress = new PullProgress(options.onProgress, options.now)
    const tooSlow = new AbortController()
    const stopWatching = daemon.api
      ? watchThroughput({
          windowMs: throughputWindowMs(timeoutMs),
          minBytesPerSecond,
          variable: PULL_RATE_VARIABLE,
          bytesSoFar: () => progress.bytesMoved,
          onTooSlow: reason => tooSlow.abort(reason)
        })
      : () => undefined
    let reason: string | undefined
    try {
      reason = await attempt(AbortSignal.any([deadline, tooSlow.signal]), progress)
    } finally {
      stopWatching()
    }
    if (deadline.aborted) throw tooLate()
    if (tooSlow.signal.aborted)
      throw unverifiable(
        `environment: docker pull ${image.reference}: ${tooSlow.signal.reason}`,
        undefined,
        { code: 'IMAGE_PULL' }
      )
    if (reason === undefined) {
      progress.done()
      break
    }
    if (tries >= retries || PERMANENT_PULL_ERROR.test(reason))
      throw unverifiable(
        `environment: cannot pull ${image.reference} (platform ${image.platform}): ${reason}. ` +
          "Pin the pushed image's repository digest, not a local image ID: docker inspect --format '{{index .RepoDigests 0}}' IMAGE",
        undefined,
        { code: 'IMAGE_PULL' }
      )
    await sleep(delay)
    if (deadline.aborted) throw tooLate()
    delay *= 2
  }
  if (!(await holdsDigest(run, image)))
    throw invalid(
      `environment: image digest mismatch: the daemon does not report ${image.reference} among the pulled image's repo digests`,
      undefined,
      { code: 'IMAGE_DIGEST' }
    )
}

async function apiAttempt(
  api: DockerApi,
  image: ImageRef,
  credentials: RegistryAuthEnv
): Promise<Attempt> {
  const registryAuth = await registryAuthHeader(registryOf(image.repository), credentials)
  const request = {
    repository: image.repository,
    digest: `sha256:${image.sha256}`,
    platform: image.platform,
    registryAuth
  }
  return (signal, progress) =>
    api
      .pull(request, message => progress.message(message), signal)
      .then(
        () => undefined,
        error => messageOf(error)
      )
}

function cliAttempt(run: Run, image: ImageRef): Attempt {
  return async (signal, progress) => {
    const result = await run('docker', ['pull', '--platform', image.platform, image.reference], {
      signal,
      onStdout: chunk => progress.output(chunk)
    })
    if (result.exitCode === 0) return undefined
    return lastLine(result.stderr) || `docker pull exited with ${result.exitCode}`
  }
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

const PROGRESS_INTERVAL_MS = 5000
const LAYER_ID = /^[0-9a-f]{12}$/

/**
 * Follows a pull, from the daemon's API messages or from `docker pull` output (which without a
 * terminal has a status line per layer event and no byte counts), and reports
 * `N of M layer(s) downloaded, K extracted[, X received]` every few seconds.
 */
export class PullProgress {
  private readonly layers = new Set<string>()
  private readonly downloaded = new Set<string>()
  private readonly extracted = new Set<string>()
  private readonly receivedBytes = new Map<string, number>()
  private readonly extractedBytes = new Map<string, number>()
  private pending = ''
  private last: number

  constructor(
    private readonly report: ((line: string) => void) | undefined,
    private readonly now: () => number = Date.now
  ) {
    this.last = now()
  }

  /** Layer bytes received plus bytes extracted: what the minimum throughput is measured on. */
  get bytesMoved(): number {
    return sum(this.receivedBytes) + sum(this.extractedBytes)
  }

  /** A chunk of `docker pull` output. */
  output(chunk: Buffer): void {
    const lines = (this.pending + chunk.toString('utf8')).split('\n')
    this.pending = lines.pop() ?? ''
    for (const line of lines) this.line(line)
    this.tick()
  }

  /** A message of the daemon's pull stream. */
  message(message: PullMessage): void {
    if (typeof message.id === 'string' && typeof message.status === 'string')
      this.event(message.id, message.status, message.progressDetail?.current)
    this.tick()
  }

  done(): void {
    if (this.pending) this.line(this.pending)
    if (this.layers.size > 0) this.emit()
  }

  private line(line: string): void {
    const match = /^([0-9a-f]{12}): (.+)$/.exec(line.trim())
    if (match) this.event(match[1], match[2])
  }

  private event(layer: string, status: string, current?: number): void {
    if (!LAYER_ID.test(layer)) return
    this.layers.add(layer)
    if (/^(Download complete|Already exists|Pull complete)/.test(status)) this.downloaded.add(layer)
    if (/^(Already exists|Pull complete)/.test(status)) this.extracted.add(layer)
    if (typeof current !== 'number' || !Number.isFinite(current)) return
    const bytes =
      status === 'Downloading'
        ? this.receivedBytes
        : status === 'Extracting'
          ? this.extractedBytes
          : undefined
    if (bytes) bytes.set(layer, Math.max(bytes.get(layer) ?? 0, current))
  }

  private tick(): void {
    if (this.now() - this.last >= PROGRESS_INTERVAL_MS) this.emit()
  }

  private emit(): void {
    this.last = this.now()
    const received = sum(this.receivedBytes)
    this.report?.(
      `pulling: ${this.downloaded.size} of ${this.layers.size} layer(s) downloaded, ${this.extracted.size} extracted` +
        (received > 0 ? `, ${formatBytes(received)} received` : '')
    )
  }
}

function sum(values: Map<string, number>): number {
  let total = 0
  for (const value of values.values()) total += value
  return total
}
