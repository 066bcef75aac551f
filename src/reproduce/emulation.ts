// Publisher-side CPU emulation: the build under qemu-user as if on another CPU, for
// `verify-model build --emulate-cpu` and `--cross-check`. Never used by `verify` or the action.
import { access, constants } from 'node:fs/promises'
import path from 'node:path'
import { unverifiable } from '../errors.js'
import type { Run } from '../exec.js'
import { clip } from '../text/sanitize.js'
import type { Ledger } from '../protocol/ledger.js'
import { compareIsaLevels, ISA_LEVELS, type IsaLevel } from '../protocol/isa.js'
import { bindMount } from './container.js'

export type CpuVendor = 'intel' | 'amd'

export interface QemuCpuModel {
  /** The `-cpu` name. */
  name: string
  vendor: CpuVendor
  /** The level the model has under qemu-user 7.2's TCG (measured: TCG has no AVX-512). */
  level: IsaLevel
}

/**
 * qemu's x86 CPU models and the level each gives under qemu 7.2 (Debian bookworm), measured
 * with GCC's `__builtin_cpu_supports("x86-64-vN")` under `qemu-x86_64-static -cpu MODEL`.
 * TCG emulates no AVX-512, so the AVX-512 server models are x86-64-v3 here and no model is v4.
 * The preferred model of each vendor and level comes first.
 */
export const QEMU_CPU_MODELS: readonly QemuCpuModel[] = [
  { name: 'Nehalem', vendor: 'intel', level: 'x86-64-v2' },
  { name: 'Westmere', vendor: 'intel', level: 'x86-64-v2' },
  { name: 'SandyBridge', vendor: 'intel', level: 'x86-64-v2' },
  { name: 'IvyBridge', vendor: 'intel', level: 'x86-64-v2' },
  { name: 'Haswell', vendor: 'intel', level: 'x86-64-v3' },
  { name: 'Broadwell', vendor: 'intel', level: 'x86-64-v3' },
  { name: 'Skylake-Client', vendor: 'intel', level: 'x86-64-v3' },
  { name: 'Skylake-Server', vendor: 'intel', level: 'x86-64-v3' },
  { name: 'Cascadelake-Server', vendor: 'intel', level: 'x86-64-v3' },
  { name: 'Icelake-Server', vendor: 'intel', level: 'x86-64-v3' },
  { name: 'Cooperlake', vendor: 'intel', level: 'x86-64-v3' },
  { name: 'Opteron_G4', vendor: 'amd', level: 'x86-64-v2' },
  { name: 'Opteron_G5', vendor: 'amd', level: 'x86-64-v2' },
  { name: 'EPYC', vendor: 'amd', level: 'x86-64-v3' },
  { name: 'EPYC-Rome', vendor: 'amd', level: 'x86-64-v3' },
  { name: 'EPYC-Milan', vendor: 'amd', level: 'x86-64-v3' }
]

/** Where Debian's `qemu-user-static` installs the emulator. */
export const DEFAULT_QEMU_PATH = '/usr/bin/qemu-x86_64-static'
export const QEMU_INSTALL_HINT = 'sudo apt-get install qemu-user-static'

/** Where the emulator is mounted in the build container (read-only). */
export const QEMU_CONTAINER_PATH = '/.verify-model/qemu-x86_64-static'
/** Where qemu writes its system-call log (`-strace`), to find the programs that ran natively. */
export const QEMU_LOG_DIR = '/.verify-model/log'
export const QEMU_LOG_NAME = 'qemu.log'

export interface Emulation {
  /** The host's static qemu-user for x86-64. */
  qemuPath: string
  model: QemuCpuModel
  /** The command's program as an absolute path in the image: qemu-user does not search PATH. */
  program: string
  /** A host directory, writable by the build's uid, for qemu's system-call log. */
  logDir: string
}

export function findCpuModel(name: string): QemuCpuModel | undefined {
  return QEMU_CPU_MODELS.find(model => model.name === name)
}

/** How messages name the emulated CPU: `qemu-user -cpu Haswell (intel, x86-64-v3)`. */
export function describeCpuModel(model: QemuCpuModel): string {
  return `qemu-user -cpu ${model.name} (${model.vendor}, ${model.level})`
}

/** The model names, for an error message. */
export function cpuModelNames(): string {
  return QEMU_CPU_MODELS.map(m => `${m.name} (${m.level})`).join(', ')
}

/**
 * The model a cross-check runs: of the ledger's level (the lowest level when unpinned, so a
 * dependence on the CPU shows), from the other vendor than the host's where qemu has one.
 * Undefined when qemu emulates no CPU of that level.
 */
export function crossCheckModel(
  isa: IsaLevel | undefined,
  hostVendor: CpuVendor | undefined
): QemuCpuModel | undefined {
  const level = isa ?? ISA_LEVELS[0]
  const ofLevel = QEMU_CPU_MODELS.filter(m => m.level === level)
  const otherVendor = hostVendor === 'intel' ? 'amd' : 'intel'
  return ofLevel.find(m => m.vendor === otherVendor) ?? ofLevel[0]
}

/** Whether a model can run a build pinned to `isa` (any model runs an unpinned one). */
export function modelRunsLevel(model: QemuCpuModel, isa: IsaLevel | undefined): boolean {
  return isa === undefined || compareIsaLevels(model.level, isa) >= 0
}

/**
 * The `docker run` argv of `buildRunArgs` with the build under qemu-user: the emulator mounted
 * read-only, and the command prefixed with it, `-cpu MODEL` and a system-call log (qemu-user
 * emulates no `execve`: a program the build execs runs on the host's CPU, and the log shows it).
 * Pure. `image` is the reference the argv runs; the command after it is replaced by `program`
 * and the command's arguments. Docker's init runs as PID 1: qemu-user dies of a guest's fatal
 * signal by raising it on itself, which the kernel ignores for a PID 1, so without it a crash
 * under qemu hangs until the time limit.
 */
export function emulatedRunArgs(
  args: readonly string[],
  image: string,
  command: readonly string[],
  emulation: Emulation
): string[] {
  const at = args.indexOf('--entrypoint')
  if (at < 0 || args[at + 2] !== image)
    throw new Error('emulatedRunArgs: the argv has no --entrypoint before the image')
  return [
    ...args.slice(0, at),
    '--init',
    '--mount',
    bindMount(emulation.qemuPath, QEMU_CONTAINER_PATH, 'readonly'),
    '--mount',
    bindMount(emulation.logDir, QEMU_LOG_DIR),
    ...args.slice(at, at + 3),
    QEMU_CONTAINER_PATH,
    '-cpu',
    emulation.model.name,
    '-strace',
    '-D',
    path.posix.join(QEMU_LOG_DIR, QEMU_LOG_NAME),
    emulation.program,
    ...command.slice(1)
  ]
}

/** Throws `unverifiable` with the install command when the host has no usable qemu-user. */
export async function checkQemu(qemuPath: string): Promise<void> {
  await access(qemuPath, constants.X_OK).catch(() => {
    throw unverifiable(
      `emulation needs qemu-user for x86-64 at ${qemuPath}, which is missing or not executable: install it with \`${QEMU_INSTALL_HINT}\``
    )
  })
}

/** What docker uses when the image sets no PATH. */
const DOCKER_DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/**
 * The absolute path in the image of the command's program, looked up the way the container
 * runtime does (`PATH` of `build.env`, else of the image, else docker's default), since
 * qemu-user opens its program by path. A program with a `/` is used as written.
 */
export async function resolveProgram(run: Run, ledger: Ledger): Promise<string> {
  const program = ledger.build.command[0]
  if (program.includes('/')) return program
  const image = ledger.environment.reference
  const searchPath = ledger.build.env.PATH ?? (await imagePath(run, image)) ?? DOCKER_DEFAULT_PATH
  const created = await run('docker', ['create', '--entrypoint', '', image, program])
  if (created.exitCode !== 0)
    throw unverifiable(`emulation: docker create ${image} failed: ${created.stderr.trim()}`)
  const container = created.stdout.trim()
  try {
    for (const dir of searchPath.split(':').filter(d => d.startsWith('/'))) {
      const candidate = path.posix.join(dir, program)
      const copied = await run('docker', ['cp', `${container}:${candidate}`, '-'])
      if (copied.exitCode === 0) return candidate
    }
  } finally {
    await run('docker', ['rm', '--force', container]).catch(() => undefined)
  }
  throw unverifiable(
    `build.command[0]: '${clip(program)}' is not in the image's PATH (${searchPath}), so qemu-user cannot run it: write the program's absolute path`
  )
}

async function imagePath(run: Run, image: string): Promise<string | undefined> {
  const inspected = await run('docker', [
    'image',
    'inspect',
    '--format',
    '{{json .Config.Env}}',
    image
  ])
  if (inspected.exitCode !== 0) return undefined
  const env = JSON.parse(inspected.stdout) as string[] | null
  return env?.find(entry => entry.startsWith('PATH='))?.slice('PATH='.length)
}

/**
 * The programs a build under qemu-user exec'd (so ran natively, not emulated), from qemu's
 * `-strace` log lines `PID execve("PATH",{…}) = …`; failed attempts (`= -1 errno=…`) are left out.
 */
export async function nativePrograms(lines: AsyncIterable<string>, max = 10): Promise<string[]> {
  const programs = new Set<string>()
  for await (const line of lines) {
    const match = /^\d+ execve\("((?:[^"\\]|\\.)*)",\{(?:"((?:[^"\\]|\\.)*)")?/.exec(line)
    if (match === null || / = -1 errno=/.test(line)) continue
    // busybox runs its applets by exec'ing itself.
    const [, file, argv0] = match
    const program = file === '/proc/self/exe' && argv0 ? `${argv0} (${file})` : file
    if (programs.size < max) programs.add(program)
  }
  return [...programs]
}
