import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { treeSha256 } from '../../src/digest/tree.js'
import { VerifyError } from '../../src/errors.js'
import { run } from '../../src/exec.js'
import type { BuildSpec, ImageRef, Ledger } from '../../src/protocol/ledger.js'
import { normalizedEnv } from '../../src/protocol/contract-env.js'
import { buildRunArgs, runContainer } from '../../src/reproduce/container.js'
import { reproduce, type ReproduceOptions } from '../../src/reproduce/index.js'
import { buildBusyboxImage, describeDocker } from '../helpers/docker.js'
import { makeGitRepo } from '../helpers/git.js'

// The container contract (docs/protocol.md section 4) against the real daemon, a real registry and
// a real git repository over file://. One busybox image for the whole file.

const SOURCE_DATE_EPOCH = 1700000000
const LOCKFILE = 'busybox==1.35\n'

const PROBE = `
p() { echo "$1=$2" >> /out/probe.txt; }
try() { if "$@" 2>/dev/null; then echo allowed; else echo refused; fi; }
p uid "$(id -u)"
p gid "$(id -g)"
p hostname "$(hostname)"
p pwd "$(pwd)"
p cpus "$(nproc)"
p source_mtime "$(stat -c %Y probe.sh)"
p interfaces "$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')"
p cap_eff "$(grep CapEff /proc/self/status | cut -f2)"
p no_new_privs "$(grep NoNewPrivs /proc/self/status | cut -f2)"
p write_root "$(try touch /evil)"
p write_etc "$(try touch /etc/evil)"
p write_data "$(try touch /data/evil)"
p write_tmp "$(try touch /tmp/ok)"
p write_src "$(try touch /src/ok)"
p su_root "$(try su -c true root </dev/null)"
p host_loopback "$(nc -w 2 127.0.0.1 5000 </dev/null 2>&1)"
p outside "$(nc -w 2 172.17.0.1 80 </dev/null 2>&1)"
p data "$(cat /data/input.txt)"
`

const BUILD = `set -e
mkdir -p /out/weights
echo "seed=$SEED epoch=$SOURCE_DATE_EPOCH" > /out/weights/model.bin
cp config.json /out/config.json
`

describeDocker('reproduce in the pinned image', () => {
  let image: ImageRef
  let fixtures: string
  let repo: string
  let commit: string
  let datasetDir: string
  let datasetRoot: string

  beforeAll(async () => {
    image = await buildBusyboxImage()
    fixtures = await mkdtemp(path.join(os.tmpdir(), 'verify-model-reproduce-'))
    repo = path.join(fixtures, 'repo')
    commit = makeGitRepo(repo, {
      'probe.sh': PROBE,
      'build.sh': BUILD,
      'config.json': '{"layers": 2}\n',
      'requirements.lock': LOCKFILE
    })
    datasetDir = path.join(fixtures, 'dataset')
    await mkdir(datasetDir)
    await writeFile(path.join(datasetDir, 'input.txt'), 'the dataset\n')
    datasetRoot = (await treeSha256(datasetDir)).root
  })

  afterAll(async () => {
    await rm(fixtures, { recursive: true, force: true })
  })

  function ledgerOf(build: Partial<BuildSpec>, extra: Partial<Ledger> = {}): Ledger {
    return {
      source: { uri: `git+file://${repo}`, gitCommit: commit },
      dependencies: [
        { name: 'requirements.lock', sha256: createHash('sha256').update(LOCKFILE).digest('hex') }
      ],
      environment: image,
      build: {
        command: ['sh', 'build.sh'],
        env: {},
        sourceDateEpoch: SOURCE_DATE_EPOCH,
        workdir: '.',
        network: 'none',
        timeoutSeconds: 60,
        cpus: 1,
        gpus: 'none',
        ...build
      },
      ...extra
    }
  }

  /** Runs reproduce() in a fresh work dir and checks that it leaves nothing else there. */
  async function reproduceIn(ledger: Ledger, options: Partial<ReproduceOptions> = {}) {
    const workDir = await mkdtemp(path.join(fixtures, 'work-'))
    const phases: string[] = []
    let container = ''
    const settled = await reproduce(
      ledger,
      {
        workDir,
        allowNetwork: false,
        onPhase: (phase, detail) => {
          phases.push(phase)
          if (phase === 'build') container = detail!.split(':')[0]
        },
        ...options
      },
      { run }
    ).then(
      result => ({ result, error: undefined }),
      (error: unknown) => ({ result: undefined, error: error as VerifyError })
    )
    const kept = options.keepOutputsIn?.startsWith(workDir)
      ? [path.basename(options.keepOutputsIn)]
      : []
    expect(await readdir(workDir)).toEqual(kept)
    return { ...settled, phases, container, workDir }
  }

  function containersNamed(name: string): string {
    return execFileSync('docker', ['ps', '--all', '--quiet', '--filter', `name=^/${name}$`], {
      encoding: 'utf8'
    }).trim()
  }

  it('reproduces a build twice with the same root, the root of exactly what it wrote', async () => {
    const expectedDir = path.join(fixtures, 'expected')
    await mkdir(path.join(expectedDir, 'weights'), { recursive: true })
    await writeFile(
      path.join(expectedDir, 'weights/model.bin'),
      `seed=7 epoch=${SOURCE_DATE_EPOCH}\n`
    )
    await writeFile(path.join(expectedDir, 'config.json'), '{"layers": 2}\n')
    const expected = await treeSha256(expectedDir)

    const ledger = ledgerOf({ env: { SEED: '7' } })
    const kept = path.join(fixtures, 'kept/out')
    const first = await reproduceIn(ledger, { keepOutputsIn: kept })
    const second = await reproduceIn(ledger)
    expect(first.error).toBeUndefined()
    expect(first.phases).toEqual(['source', 'dependencies', 'dataset', 'image', 'build', 'outputs'])
    expect(first.result).toMatchObject({
      outputs: expected,
      exitCode: 0,
      commit,
      imageReference: image.reference,
      outDir: kept
    })
    expect(second.result?.outputs).toEqual(expected)
    expect(await readFile(path.join(kept, 'weights/model.bin'), 'utf8')).toBe(
      `seed=7 epoch=${SOURCE_DATE_EPOCH}\n`
    )
    expect(containersNamed(first.container)).toBe('')
  })

  describe('the container contract, probed from inside', () => {
    let probe: Record<string, string>
    let datasetDigest: string | undefined

    beforeAll(async () => {
      const kept = path.join(fixtures, 'probe/out')
      const { result, error } = await reproduceIn(
        ledgerOf(
          { command: ['sh', 'probe.sh'], outputs: ['probe.txt'] },
          { dataset: { treeSha256: datasetRoot } }
        ),
        { datasetDir, keepOutputsIn: kept }
      )
      if (error) throw error
      datasetDigest = result?.dataset?.root
      const lines = (await readFile(path.join(kept, 'probe.txt'), 'utf8')).split('\n')
      probe = Object.fromEntries(
        lines
          .filter(Boolean)
          .map(line => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)])
      )
    })

    it('runs as uid:gid 1000:1000 with hostname build in /src, on one CPU', () => {
      expect(probe).toMatchObject({
        uid: '1000',
        gid: '1000',
        hostname: 'build',
        pwd: '/src',
        cpus: '1'
      })
    })

    it('gets the source with every mtime at sourceDateEpoch', () => {
      expect(probe.source_mtime).toBe(String(SOURCE_DATE_EPOCH))
    })

    it('cannot write outside /src, /out and /tmp', () => {
      expect(probe).toMatchObject({
        write_root: 'refused',
        write_etc: 'refused',
        write_data: 'refused',
        write_tmp: 'allowed',
        write_src: 'allowed'
      })
    })

    it('cannot gain root: no capabilities, no-new-privileges, su refused', () => {
      expect(probe).toMatchObject({
        cap_eff: '0000000000000000',
        no_new_privs: '1',
        su_root: 'refused'
      })
    })

    it('has no network: only its own lo (the registry on the host loopback is not there), nothing routable', () => {
      expect(probe.interfaces.trim()).toBe('lo')
      expect(probe.host_loopback).toMatch(
        /can't connect to remote host \(127\.0\.0\.1\): Connection refused/
      )
      expect(probe.outside).toMatch(
        /can't connect to remote host \(172\.17\.0\.1\): Network is unreachable/
      )
    })

    it('reads the verified dataset at /data, and its output depends on it', () => {
      expect(datasetDigest).toBe(datasetRoot)
      expect(probe.data).toBe('the dataset')
    })
  })

  it('lets nothing of the host environment in: exactly the normalized env and build.env', async () => {
    process.env.LEAK_TEST_SECRET = 'x'
    const work = await mkdtemp(path.join(fixtures, 'env-'))
    try {
      const ledger = ledgerOf({ command: ['env'], env: { SEED: '1', TZ: 'Europe/Paris' } })
      const name = `verify-model-env-${process.pid}`
      const args = buildRunArgs(
        ledger,
        { src: work, out: work },
        { name, allowNetwork: false, hostCpus: 1 }
      )
      const result = await runContainer(args, { run, name, timeoutSeconds: 30 })
      expect(result.exitCode).toBe(0)
      const env = Object.fromEntries(
        result.logTail
          .trim()
          .split('\n')
          .map(line => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)])
      )
      // PATH (the image sets none) and HOSTNAME come from docker itself, not from the host.
      expect(env).toEqual({
        ...normalizedEnv(ledger.build),
        SEED: '1',
        TZ: 'Europe/Paris',
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        HOSTNAME: 'build'
      })
      expect(containersNamed(name)).toBe('')
    } finally {
      delete process.env.LEAK_TEST_SECRET
      await rm(work, { recursive: true, force: true })
    }
  })

  it('passes hostile ledger strings to the container verbatim as argv, never to a shell on the host', async () => {
    const marker = path.join(fixtures, 'host-marker')
    const hostile = [
      '--privileged',
      '-v',
      '/:/host',
      `$(touch ${marker})`,
      `; touch ${marker}`,
      `\`touch ${marker}\``,
      `line\ntouch ${marker}`
    ]
    const script =
      'printf "%s\\n" "$@" > /out/args.txt; grep CapEff /proc/self/status >> /out/args.txt; ' +
      '[ -e /host ] || echo "no /host" >> /out/args.txt; echo "INJECT=$INJECT" >> /out/args.txt'
    const kept = path.join(fixtures, 'hostile/out')
    const { error } = await reproduceIn(
      ledgerOf({
        command: ['sh', '-c', script, 'sh', ...hostile],
        env: { INJECT: `$(touch ${marker})` }
      }),
      { keepOutputsIn: kept }
    )
    expect(error).toBeUndefined()
    expect(await readFile(path.join(kept, 'args.txt'), 'utf8')).toBe(
      `${hostile.join('\n')}\nCapEff:\t0000000000000000\nno /host\nINJECT=$(touch ${marker})\n`
    )
    expect(existsSync(marker)).toBe(false)
  })

  it('is unverifiable with the log tail when the build exits non-zero', async () => {
    const { error, container } = await reproduceIn(
      ledgerOf({ command: ['sh', '-c', 'echo preparing; echo "boom: out of cheese" >&2; exit 3'] })
    )
    expect(error).toMatchObject({
      verdict: 'unverifiable',
      message: expect.stringContaining('exited with code 3')
    })
    // stdout and stderr are separate pipes: both lines are in the tail, in either order.
    const tail = (error as { detail: string }).detail.split('\n')
    expect(tail).toEqual(expect.arrayContaining(['preparing', 'boom: out of cheese']))
    expect(containersNamed(container)).toBe('')
  })

  it('kills the container at timeoutSeconds and leaves none behind', async () => {
    const started = Date.now()
    const { error, container } = await reproduceIn(
      ledgerOf({ command: ['sleep', '30'], timeoutSeconds: 3 })
    )
    const buildSeconds = (Date.now() - started) / 1000
    expect(error).toMatchObject({
      verdict: 'unverifiable',
      message: expect.stringContaining('build exceeded timeoutSeconds=3')
    })
    expect(buildSeconds).toBeGreaterThanOrEqual(3)
    expect(buildSeconds).toBeLessThan(10)
    expect(container).toMatch(/^verify-model-[0-9a-f]{12}$/)
    expect(containersNamed(container)).toBe('')
  })

  it("caps the timeout at the caller's timeoutCapSeconds", async () => {
    const { error } = await reproduceIn(ledgerOf({ command: ['sleep', '30'] }), {
      timeoutCapSeconds: 1
    })
    expect(error?.message).toContain('build exceeded timeoutSeconds=1')
  })

  it('is invalid when the build leaves a symlink in /out', async () => {
    const { error } = await reproduceIn(
      ledgerOf({ command: ['sh', '-c', 'echo x > /out/model.bin; ln -s /etc/passwd /out/link'] })
    )
    expect(error).toMatchObject({
      verdict: 'invalid',
      message: expect.stringContaining('/out/link is a symbolic link')
    })
  })

  it('is unverifiable, naming the reference, when the registry does not have the image digest', async () => {
    const unknown = 'ee'.repeat(32)
    const missing = {
      ...image,
      sha256: unknown,
      reference: `${image.repository}@sha256:${unknown}`
    }
    const { error, phases } = await reproduceIn(ledgerOf({}, { environment: missing }))
    expect(error).toMatchObject({
      verdict: 'unverifiable',
      message: expect.stringMatching(
        new RegExp(`cannot pull ${missing.reference}.*manifest unknown`)
      )
    })
    expect(phases.at(-1)).toBe('image')
  })

  // The CI runners and this machine have no GPU (nor the NVIDIA runtime docker needs for one).
  it("is unverifiable, with docker's reason, when the ledger asks for GPUs this runner lacks", async () => {
    const { error } = await reproduceIn(ledgerOf({ gpus: 'all' }), { allowGpu: true })
    expect(error).toMatchObject({
      verdict: 'unverifiable',
      message: expect.stringMatching(/docker could not start the build container \(exit 125: .*gpu/)
    })
  })

  it("is invalid when the ledger asks for network 'bridge' without the caller's opt-in", async () => {
    const { error, phases } = await reproduceIn(ledgerOf({ network: 'bridge' }))
    expect(error).toMatchObject({
      verdict: 'invalid',
      message: expect.stringContaining("asks for network 'bridge' but allow-network is false")
    })
    expect(phases).toEqual([])
  })
})
