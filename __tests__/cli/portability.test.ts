import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { ImageRef } from '../../src/protocol/ledger.js'
import { cli } from '../helpers/cli.js'
import { buildBusyboxImage, describeDocker } from '../helpers/docker.js'
import { makeGitRepo } from '../helpers/git.js'
import { escapeRegExp } from '../helpers/regexp.js'

// `verify-model build --emulate-cpu` and `--cross-check` for real: busybox (a static binary)
// under the host's qemu-x86_64-static. busybox's `read` builtin runs in the emulated process,
// so /proc/self/status names qemu there and sh natively: a build that writes it is CPU-dependent.

// A cross-check runs a model of the ledger's level from the other vendor than the host's (the
// lowest level when unpinned): Intel models on an AMD host, AMD models on an Intel one.
const hostIsIntel = /^vendor_id\s*:\s*GenuineIntel$/m.test(readFileSync('/proc/cpuinfo', 'utf8'))
const CROSS_MODEL = hostIsIntel
  ? {
      'x86-64-v2': { name: 'Opteron_G4', vendor: 'amd' },
      'x86-64-v3': { name: 'EPYC', vendor: 'amd' }
    }
  : {
      'x86-64-v2': { name: 'Nehalem', vendor: 'intel' },
      'x86-64-v3': { name: 'Haswell', vendor: 'intel' }
    }
const crossCpu = (level: keyof typeof CROSS_MODEL) =>
  `-cpu ${CROSS_MODEL[level].name} (${CROSS_MODEL[level].vendor}, ${level})`

const PORTABLE = ['sh', '-c', 'echo "seed=$SEED" > /out/weights.bin']
const CPU_DEPENDENT = [
  'sh',
  '-c',
  'read -r name < /proc/self/status; echo "seed=$SEED" > /out/weights.bin; ' +
    'printf \'{"layers": 2, "runner": {"process": "%s"}}\\n\' "${name#Name:?}" > /out/config.json'
]

describeDocker('build under qemu-user (--emulate-cpu, --cross-check)', () => {
  let image: ImageRef
  let dir: string
  let source: string

  beforeAll(async () => {
    image = await buildBusyboxImage()
    dir = mkdtempSync(path.join(os.tmpdir(), 'portability-'))
    source = path.join(dir, 'source')
    makeGitRepo(source, { 'README.md': '# tiny\n' })
  })

  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  let count = 0
  async function statement(
    command: string[],
    isa: string,
    options: string[] = []
  ): Promise<string> {
    const file = path.join(dir, `statement-${++count}.json`)
    const init = await cli(
      'ledger',
      'init',
      '--source-dir',
      source,
      '--image',
      image.reference,
      '--env',
      'SEED=7',
      '--isa',
      isa,
      ...options,
      '-o',
      file,
      '--',
      ...command
    )
    expect(init.code).toBe(0)
    return file
  }

  const out = () => path.join(dir, `out-${++count}`)

  it('--emulate-cpu Nehalem runs the build under qemu -cpu Nehalem, same root for a portable build', async () => {
    const ledger = await statement(PORTABLE, 'x86-64-v2')
    const native = await cli('build', ledger, '--out', out())
    expect(native.code).toBe(0)
    const emulatedOut = out()
    const emulated = await cli(
      'build',
      ledger,
      '--emulate-cpu',
      'Nehalem',
      '--out',
      emulatedOut,
      '--json'
    )
    expect(emulated.code).toBe(0)
    const result = JSON.parse(emulated.stdout)
    expect(result).toMatchObject({
      root: native.stdout.trim(),
      isa: 'x86-64-v2',
      emulatedCpu: { name: 'Nehalem', vendor: 'intel', level: 'x86-64-v2' },
      nativePrograms: []
    })
    expect(readFileSync(path.join(emulatedOut, 'weights.bin'), 'utf8')).toBe('seed=7\n')
  })

  it('--emulate-cpu really emulates: the process the build sees is qemu', async () => {
    const ledger = await statement(CPU_DEPENDENT, 'x86-64-v2')
    const nativeOut = out()
    const emulatedOut = out()
    expect((await cli('build', ledger, '--out', nativeOut)).code).toBe(0)
    expect(
      (await cli('build', ledger, '--emulate-cpu', 'Nehalem', '--out', emulatedOut)).code
    ).toBe(0)
    const runner = (dir: string) =>
      JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')).runner.process
    expect(runner(nativeOut)).toBe('sh')
    expect(runner(emulatedOut)).toBe('qemu-x86_64-sta')
  })

  it('refuses a CPU model below the ledger level, an unknown model, and a missing qemu', async () => {
    const ledger = await statement(PORTABLE, 'x86-64-v3')
    const below = await cli('build', ledger, '--emulate-cpu', 'Nehalem', '--out', out())
    expect(below.code).toBe(1)
    expect(below.stderr).toContain(
      'unverifiable: predicate.build.isa: the ledger pins x86-64-v3 but the emulated CPU Nehalem is x86-64-v2 (under qemu-user): choose a CPU model of x86-64-v3 or above'
    )
    const unknown = await cli('build', ledger, '--emulate-cpu', 'Pentium4', '--out', out())
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain(
      "--emulate-cpu: unknown CPU model 'Pentium4' (known: Nehalem (x86-64-v2)"
    )
    const missingOut = out()
    const missing = await cli(
      'build',
      ledger,
      '--emulate-cpu',
      'Haswell',
      '--qemu',
      path.join(dir, 'no-qemu'),
      '--out',
      missingOut
    )
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain(
      `unverifiable: emulation needs qemu-user for x86-64 at ${path.join(dir, 'no-qemu')}, which is missing or not executable: install it with \`sudo apt-get install qemu-user-static\``
    )
    expect(existsSync(missingOut)).toBe(false)
  })

  it('--cross-check says portable for a build that does not depend on the CPU (exit 0)', async () => {
    const ledger = await statement(PORTABLE, 'x86-64-v3')
    const checked = await cli('build', ledger, '--cross-check', '--out', out())
    expect(checked.code).toBe(0)
    const [root, verdict] = checked.stdout.trimEnd().split('\n')
    expect(root).toMatch(/^[0-9a-f]{64}$/)
    expect(verdict).toBe(
      `portable: the build under qemu-user ${crossCpu('x86-64-v3')} gave the same root (build.isa x86-64-v3)`
    )
  })

  it('--cross-check of an unpinned CPU-dependent build: not portable, the file and the JSON key that differ (exit 1)', async () => {
    const ledger = await statement(CPU_DEPENDENT, 'none')
    const checked = await cli('build', ledger, '--cross-check', '--out', out())
    expect(checked.code).toBe(1)
    expect(checked.stderr).toContain('note: the ledger does not pin build.isa')
    const lines = checked.stdout.trimEnd().split('\n')
    expect(lines[1]).toMatch(
      new RegExp(
        `^not portable: the build under qemu-user ${escapeRegExp(crossCpu('x86-64-v2'))} gave root [0-9a-f]{12}, not the native one \\(unpinned ledger\\)$`
      )
    )
    expect(lines[2]).toMatch(/^ {2}changed {2}config\.json \(/)
    expect(lines.slice(3, 5)).toEqual([
      '           config.json: 1 key differs',
      '             runner.process: "sh" → "qemu-x86_64-sta"'
    ])
    expect(lines.some(line => line.includes('weights.bin'))).toBe(false)
    expect(lines.at(-1)).toContain('fix: pin the CPU level with build.isa')

    const json = await cli('build', ledger, '--cross-check', '--out', out(), '--json')
    expect(json.code).toBe(1)
    const result = JSON.parse(json.stdout)
    expect(result.isa).toBeNull()
    expect(result.crossCheck).toMatchObject({
      cpu: { name: CROSS_MODEL['x86-64-v2'].name, level: 'x86-64-v2' },
      verdict: 'not portable',
      nativePrograms: [],
      diff: { changed: [{ path: 'config.json' }], added: [], removed: [], same: 1 }
    })
    expect(result.crossCheck.explanations['config.json']).toEqual([
      'config.json: 1 key differs',
      '  runner.process: "sh" → "qemu-x86_64-sta"'
    ])
  })

  it('a build that dies of a signal under qemu ends with its exit code, not at its time limit', async () => {
    // qemu-user dies of a guest's fatal signal by raising it on itself, which the kernel does
    // not deliver to a container's PID 1: without an init process the build hung until killed.
    // Natively the shell is PID 1 (the contract has no init), ignores the signal and succeeds.
    const ledger = await statement(
      ['sh', '-c', 'echo "seed=$SEED" > /out/weights.bin; kill -SEGV $$'],
      'x86-64-v2',
      ['--timeout-seconds', '40']
    )
    const started = Date.now()
    const crashed = await cli('build', ledger, '--emulate-cpu', 'Nehalem', '--out', out())
    expect({ code: crashed.code, stderr: crashed.stderr }).toEqual({
      code: 1,
      stderr: expect.stringContaining(
        'unverifiable: the build exited with code 139: see the log tail'
      )
    })
    expect(crashed.stderr).toContain('qemu: uncaught target signal 11 (Segmentation fault)')
    expect(Date.now() - started).toBeLessThan(30_000)

    const checked = await cli('build', ledger, '--cross-check', '--out', out())
    expect(checked.code).toBe(1)
    expect(checked.stderr).toContain(
      `unverifiable: --cross-check: the build under qemu-user ${crossCpu('x86-64-v2')} failed: the build exited with code 139: see the log tail`
    )
  })

  it('--cross-check of a build that execs a program: inconclusive, naming it (exit 1)', async () => {
    // busybox runs `cat` by exec'ing itself: that process is not emulated.
    const ledger = await statement(
      ['sh', '-c', 'cat /src/README.md > /out/weights.bin'],
      'x86-64-v2'
    )
    const checked = await cli('build', ledger, '--cross-check', '--out', out())
    expect(checked.code).toBe(1)
    expect(checked.stdout.trimEnd().split('\n').slice(1)).toEqual([
      `inconclusive: the build under qemu-user ${crossCpu('x86-64-v2')} gave the same root, but it exec'd programs that ran on this machine's CPU, not the emulated one (build.isa x86-64-v2)`,
      '  fix: run the interpreter itself as build.command (e.g. python3 train.py, not sh -c …)',
      '  ran natively, not emulated: cat (/proc/self/exe)'
    ])
    const emulated = await cli('build', ledger, '--emulate-cpu', 'Westmere', '--out', out())
    expect(emulated.code).toBe(0)
    expect(emulated.stderr).toContain(
      "note: the build exec'd cat (/proc/self/exe), which ran on this machine's CPU, not the emulated Westmere: run the interpreter itself as build.command"
    )
  })
})
