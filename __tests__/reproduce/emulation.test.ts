import { describe, expect, it } from '@jest/globals'
import type { Ledger } from '../../src/protocol/ledger.js'
import { buildRunArgs } from '../../src/reproduce/container.js'
import {
  crossCheckModel,
  emulatedRunArgs,
  findCpuModel,
  modelRunsLevel,
  nativePrograms,
  QEMU_CONTAINER_PATH,
  QEMU_CPU_MODELS,
  resolveProgram
} from '../../src/reproduce/emulation.js'
import type { RunResult } from '../../src/exec.js'
import { sampleLedger as sampleWith, SAMPLE_REFERENCE } from '../helpers/ledger.js'

const REFERENCE = SAMPLE_REFERENCE
const sampleLedger = (build: Partial<Ledger['build']> = {}) =>
  sampleWith({ command: ['python3', 'train.py', '--entrypoint', REFERENCE], cpus: 1, ...build })

const nehalem = findCpuModel('Nehalem')!

describe('emulatedRunArgs', () => {
  const ledger = sampleLedger()
  const native = buildRunArgs(
    ledger,
    { src: '/w/src', out: '/w/out' },
    { name: 'n', allowNetwork: false, hostCpus: 2 }
  )
  const emulate = (qemuPath: string, program: string) =>
    emulatedRunArgs(native, REFERENCE, ledger.build.command, {
      qemuPath,
      model: nehalem,
      program,
      logDir: '/w/log'
    })

  it('mounts qemu read-only and runs the resolved program under it behind an init, the rest unchanged', () => {
    const emulated = emulate('/usr/bin/qemu-x86_64-static', '/usr/bin/python3')
    const image = native.indexOf('--entrypoint')
    expect(emulated).toEqual([
      ...native.slice(0, image),
      '--init',
      '--mount',
      `type=bind,src=/usr/bin/qemu-x86_64-static,dst=${QEMU_CONTAINER_PATH},readonly`,
      '--mount',
      'type=bind,src=/w/log,dst=/.verify-model/log',
      '--entrypoint',
      '',
      REFERENCE,
      QEMU_CONTAINER_PATH,
      '-cpu',
      'Nehalem',
      '-strace',
      '-D',
      '/.verify-model/log/qemu.log',
      '/usr/bin/python3',
      'train.py',
      '--entrypoint',
      REFERENCE
    ])
  })

  it('quotes a qemu path with a comma so it cannot add a mount option', () => {
    const emulated = emulate('/opt/q,rw/qemu', 'python3')
    expect(emulated).toContain(`type=bind,"src=/opt/q,rw/qemu",dst=${QEMU_CONTAINER_PATH},readonly`)
  })
})

describe('the CPU models', () => {
  it('knows the models the issue names, with the level qemu 7.2 gives them', () => {
    expect(findCpuModel('Nehalem')?.level).toBe('x86-64-v2')
    expect(findCpuModel('Haswell')?.level).toBe('x86-64-v3')
    expect(findCpuModel('EPYC')?.level).toBe('x86-64-v3')
    // TCG has no AVX-512: measured with __builtin_cpu_supports under qemu-x86_64-static 7.2.
    expect(findCpuModel('Skylake-Server')?.level).toBe('x86-64-v3')
    expect(findCpuModel('Icelake-Server')?.level).toBe('x86-64-v3')
    expect(QEMU_CPU_MODELS.some(m => m.level === 'x86-64-v4')).toBe(false)
    expect(findCpuModel('nehalem')).toBeUndefined()
  })

  it('cross-checks with the other vendor at the ledger level, the lowest when unpinned', () => {
    expect(crossCheckModel('x86-64-v3', 'amd')?.name).toBe('Haswell')
    expect(crossCheckModel('x86-64-v2', 'amd')?.name).toBe('Nehalem')
    expect(crossCheckModel(undefined, 'amd')?.name).toBe('Nehalem')
    expect(crossCheckModel('x86-64-v3', 'intel')?.name).toBe('EPYC')
    expect(crossCheckModel(undefined, 'intel')?.name).toBe('Opteron_G4')
    expect(crossCheckModel('x86-64-v3', undefined)?.name).toBe('Haswell')
    expect(crossCheckModel('x86-64-v4', 'amd')).toBeUndefined()
  })

  it('runs a level only at or above it', () => {
    expect(modelRunsLevel(nehalem, undefined)).toBe(true)
    expect(modelRunsLevel(nehalem, 'x86-64-v2')).toBe(true)
    expect(modelRunsLevel(nehalem, 'x86-64-v3')).toBe(false)
    expect(modelRunsLevel(findCpuModel('Haswell')!, 'x86-64-v2')).toBe(true)
  })
})

describe('nativePrograms', () => {
  async function* lines(text: string) {
    yield* text.split('\n')
  }

  it("lists the programs the emulated build exec'd, not the failed attempts", async () => {
    const log = [
      '1 openat(AT_FDCWD,"/etc/passwd",O_RDONLY) = 3',
      '9 execve("/proc/self/exe",{"cat","/etc/hostname",NULL}) = 9',
      '10 execve("/usr/local/bin/python3",{"python3",NULL}) = -1 errno=2 (No such file or directory)',
      '10 execve("/usr/bin/python3",{"python3","-c","x"})',
      '11 execve("/usr/bin/python3",{"python3",NULL}) = 0',
      '12 execve("/a \\"quoted\\"",{NULL}) = 0',
      'execve("/not/a/line",{NULL})'
    ].join('\n')
    expect(await nativePrograms(lines(log))).toEqual([
      'cat (/proc/self/exe)',
      '/usr/bin/python3',
      '/a \\"quoted\\"'
    ])
    expect(await nativePrograms(lines(log), 1)).toEqual(['cat (/proc/self/exe)'])
    expect(await nativePrograms(lines(''))).toEqual([])
  })
})

describe('resolveProgram', () => {
  /** A fake docker whose image holds `files` and sets `imageEnv`. */
  function fakeDocker(files: string[], imageEnv: string[] | null) {
    const calls: string[][] = []
    const run = async (file: string, args: readonly string[]): Promise<RunResult> => {
      calls.push([file, ...args])
      const ok = (stdout = ''): RunResult => ({ exitCode: 0, stdout, stderr: '' })
      if (args[0] === 'image') return ok(JSON.stringify(imageEnv))
      if (args[0] === 'create') return ok('c0ffee\n')
      if (args[0] === 'cp') {
        const target = args[1].slice('c0ffee:'.length)
        return files.includes(target) ? ok('tar') : { exitCode: 1, stdout: '', stderr: 'not found' }
      }
      return ok()
    }
    return { run, calls }
  }

  it('uses a program with a slash as written, without docker', async () => {
    const { run, calls } = fakeDocker([], null)
    expect(await resolveProgram(run, sampleLedger({ command: ['./train'] }))).toBe('./train')
    expect(calls).toEqual([])
  })

  it("searches the image's PATH in order and removes the probe container", async () => {
    const { run, calls } = fakeDocker(
      ['/usr/bin/python3', '/bin/python3'],
      ['PATH=/opt/x:/usr/bin:/bin', 'LANG=C']
    )
    expect(await resolveProgram(run, sampleLedger())).toBe('/usr/bin/python3')
    expect(calls.filter(c => c[1] === 'cp').map(c => c[2])).toEqual([
      'c0ffee:/opt/x/python3',
      'c0ffee:/usr/bin/python3'
    ])
    expect(calls.at(-1)).toEqual(['docker', 'rm', '--force', 'c0ffee'])
  })

  it("prefers build.env's PATH, then docker's default when the image sets none", async () => {
    const withEnv = fakeDocker(['/venv/bin/python3'], ['PATH=/usr/bin'])
    const ledger = sampleLedger({ env: { PATH: '/venv/bin:/usr/bin' } })
    expect(await resolveProgram(withEnv.run, ledger)).toBe('/venv/bin/python3')
    const noPath = fakeDocker(['/usr/local/bin/python3'], null)
    expect(await resolveProgram(noPath.run, sampleLedger())).toBe('/usr/local/bin/python3')
  })

  it('is unverifiable when the program is not in the PATH', async () => {
    const { run, calls } = fakeDocker([], ['PATH=/usr/bin'])
    await expect(resolveProgram(run, sampleLedger())).rejects.toMatchObject({
      verdict: 'unverifiable',
      message: expect.stringContaining("'python3' is not in the image's PATH (/usr/bin)")
    })
    expect(calls.at(-1)).toEqual(['docker', 'rm', '--force', 'c0ffee'])
  })
})
