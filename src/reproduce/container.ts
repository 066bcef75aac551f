import path from 'node:path'
import { StringDecoder } from 'node:string_decoder'
import { invalid, unverifiable } from '../errors.js'
import type { Run } from '../exec.js'
import { normalizedEnv } from '../protocol/contract-env.js'
import type { Ledger } from '../protocol/ledger.js'
import { lastLine } from './docker.js'

// The container contract of PROTOCOL.md section 4, as one `docker run` argv.

export interface MountPaths {
  /** Absolute host paths. */
  src: string
  data?: string
  out: string
  /** A segmented build's previous state (PROTOCOL.md section 9), mounted read-only at /prev. */
  prev?: string
}

export interface RunArgsOptions {
  /** The container's name: runContainer kills and removes it by this name. */
  name: string
  /** The caller's opt-in for `network: bridge`. */
  allowNetwork: boolean
  /** CPUs the runner can use (a CPU set of `build.cpus` must fit). */
  hostCpus: number
  pidsLimit?: number
  /** Memory limit (docker syntax, e.g. `8g`); no limit when absent. */
  memory?: string
  /** Size of the `/tmp` tmpfs (docker syntax). */
  tmpSize?: string
  /** Which run of a segmented build this is (1-based): sets VERIFY_MODEL_SEGMENT(S). */
  segment?: number
}

const DEFAULT_PIDS_LIMIT = 4096
const DEFAULT_TMP_SIZE = '2g'

/**
 * What the verifier's policy and this runner allow, checked before anything is fetched:
 * network only with the caller's opt-in, and enough CPUs.
 */
export function checkRunnable(
  build: Ledger['build'],
  runner: Pick<RunArgsOptions, 'allowNetwork' | 'hostCpus'>
): void {
  if (build.network === 'bridge' && !runner.allowNetwork)
    throw invalid(
      "predicate.build.network: the ledger asks for network 'bridge' but allow-network is false: rerun with allow-network if you accept a build with network access"
    )
  if (runner.hostCpus < build.cpus)
    throw unverifiable(
      `predicate.build.cpus: the build needs ${build.cpus} CPUs but this runner has ${runner.hostCpus}: use a larger runner`
    )
}

/**
 * The exact `docker run` argv for a ledger. Pure. Every ledger string lands in its own argv
 * element: the command after the image reference (docker passes everything there to the
 * container verbatim), env values inside `-e NAME=VALUE`. Nothing is ever given to a shell.
 *
 * - No `--rm`: the container is named, killed at the timeout and removed explicitly, so it
 *   dies even when the docker client does not.
 * - `--entrypoint ''`: the ledger's command is the whole argv, whatever ENTRYPOINT the image sets.
 * - Docker itself adds `PATH` (when the image sets none) and `HOSTNAME`; nothing comes from the host.
 */
export function buildRunArgs(ledger: Ledger, paths: MountPaths, options: RunArgsOptions): string[] {
  checkRunnable(ledger.build, options)
  const { build, environment } = ledger
  const env = { ...normalizedEnv(build), ...segmentEnv(build, options.segment), ...build.env }
  const args = [
    'run',
    '--name',
    options.name,
    '--hostname',
    'build',
    '--platform',
    environment.platform,
    '--read-only',
    '--tmpfs',
    `/tmp:rw,exec,nosuid,nodev,mode=1777,size=${options.tmpSize ?? DEFAULT_TMP_SIZE}`,
    '--user',
    '1000:1000',
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges',
    '--pids-limit',
    String(options.pidsLimit ?? DEFAULT_PIDS_LIMIT),
    '--network',
    build.network,
    '--cpuset-cpus',
    build.cpus === 1 ? '0' : `0-${build.cpus - 1}`
  ]
  if (options.memory !== undefined)
    args.push('--memory', options.memory, '--memory-swap', options.memory)
  if (build.gpus === 'all') args.push('--gpus', 'all')
  for (const [name, value] of Object.entries(env)) args.push('-e', `${name}=${value}`)
  args.push('--mount', bindMount(paths.src, '/src'))
  if (paths.data !== undefined) args.push('--mount', bindMount(paths.data, '/data', 'readonly'))
  if (paths.prev !== undefined) args.push('--mount', bindMount(paths.prev, '/prev', 'readonly'))
  args.push(
    '--mount',
    bindMount(paths.out, '/out'),
    '--workdir',
    path.posix.join('/src', build.workdir).replace(/(?<=.)\/+$/, ''),
    '--entrypoint',
    '',
    environment.reference,
    ...build.command
  )
  return args
}

/** PROTOCOL.md section 9: run `i` of `N` knows which it is; a one-run build gets neither. */
function segmentEnv(build: Ledger['build'], segment: number | undefined): Record<string, string> {
  if (segment === undefined) return {}
  if (
    build.segments === undefined ||
    !Number.isInteger(segment) ||
    segment < 1 ||
    segment > build.segments
  )
    throw new Error(
      `segment ${segment} is not a run of this build (segments: ${build.segments ?? 'none'})`
    )
  return { VERIFY_MODEL_SEGMENT: String(segment), VERIFY_MODEL_SEGMENTS: String(build.segments) }
}

/**
 * `--mount` takes CSV: a host path with a comma or a quote is quoted the CSV way, so a
 * caller-given directory can never add a mount option.
 */
export function bindMount(source: string, target: string, ...flags: string[]): string {
  const fields = ['type=bind', `src=${source}`, `dst=${target}`, ...flags]
  return fields
    .map(field => (/[",\n\r]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field))
    .join(',')
}

export interface RunContainerOptions {
  run: Run
  /** Must be the `--name` in args. */
  name: string
  timeoutSeconds: number
  onLog?: (chunk: Buffer) => void
  now?: () => number
  /** Kept whole lines of the log's end. */
  tailLines?: number
  tailChars?: number
}

export interface ContainerResult {
  exitCode: number
  durationMs: number
  logTail: string
  timedOut: boolean
  /** The kernel killed a process of the build for exceeding its memory limit. */
  oomKilled?: boolean
  /** Why the daemon could not be asked about the container after it ended (it went away). */
  daemonLost?: string
}

/**
 * Runs `docker <args>` attached, streaming the log (stdout and stderr as they come) and
 * keeping its tail. At the timeout the container itself is killed (`docker kill`), not only
 * the client; the container is removed on every path.
 */
/** Node fires a longer timer at once; a build over 24.8 days is stopped there. */
const MAX_TIMER_MS = 2 ** 31 - 1

export async function runContainer(
  args: readonly string[],
  options: RunContainerOptions
): Promise<ContainerResult> {
  const { run, name } = options
  const now = options.now ?? Date.now
  const tail = new LogTail(options.tailLines ?? 200, options.tailChars ?? 64 * 1024)
  const decoders = { out: new StringDecoder('utf8'), err: new StringDecoder('utf8') }
  const onChunk = (stream: 'out' | 'err') => (chunk: Buffer) => {
    tail.push(decoders[stream].write(chunk))
    options.onLog?.(chunk)
  }
  const started = now()
  let timer: NodeJS.Timeout | undefined
  try {
    const client = run('docker', args, { onStdout: onChunk('out'), onStderr: onChunk('err') })
    const expired = new Promise<'expired'>(resolve => {
      timer = setTimeout(
        () => resolve('expired'),
        Math.min(options.timeoutSeconds * 1000, MAX_TIMER_MS)
      )
    })
    const timedOut = (await Promise.race([client, expired])) === 'expired'
    if (timedOut) await run('docker', ['kill', name])
    const { exitCode } = await client
    tail.push(decoders.out.end() + decoders.err.end())
    const result = { exitCode, durationMs: now() - started, logTail: tail.text(), timedOut }
    // A kill (128 + signal) or docker's own failure (125-127): ask the daemon why, before removal.
    return timedOut || exitCode < 125 ? result : { ...result, ...(await endState(run, name)) }
  } finally {
    clearTimeout(timer)
    // A failure to start docker at all is already the error being thrown: keep that one.
    await run('docker', ['rm', '--force', name]).catch(() => undefined)
  }
}

async function endState(
  run: Run,
  name: string
): Promise<Pick<ContainerResult, 'oomKilled' | 'daemonLost'>> {
  const inspected = await run('docker', ['inspect', '--format', '{{.State.OOMKilled}}', name])
  if (inspected.exitCode === 0) return { oomKilled: inspected.stdout.trim() === 'true' }
  const reason = lastLine(inspected.stderr)
  return DAEMON_GONE.test(reason) ? { daemonLost: reason } : {}
}

const DAEMON_GONE =
  /cannot connect to the docker daemon|is the docker daemon running|error during connect/i

/** The end of a log: at most `maxLines` lines and `maxChars` characters. */
export class LogTail {
  private buffer = ''

  constructor(
    private readonly maxLines: number,
    private readonly maxChars: number
  ) {}

  push(text: string): void {
    this.buffer += text
    if (this.buffer.length > 2 * this.maxChars) this.buffer = this.buffer.slice(-this.maxChars)
  }

  text(): string {
    const lines = this.buffer.slice(-this.maxChars).split('\n')
    // A trailing newline leaves an empty last element that is not a line of its own.
    const last = lines.at(-1) === '' ? lines.length - 1 : lines.length
    return lines.slice(Math.max(0, last - this.maxLines)).join('\n')
  }
}
