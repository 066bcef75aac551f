// Issue 13 items 2–5 and 14: builds that outlive their limits, image volumes, GPUs, through the
// bundled action with real Docker.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import {
  FILE_COMMANDS_DIR,
  runBundledAction,
  runPostStep,
  type BundledActionResult
} from '../helpers/action-runner.js'
import {
  buildBusyboxImage,
  containerExists,
  describeDocker,
  docker,
  whenBuilding
} from '../helpers/docker.js'
import { commandShim } from '../helpers/shims.js'
import type { ImageRef } from '../../src/protocol/ledger.js'
import { publicKey, signedLedger } from './ledgers.js'

/** RUNNER_TEMP holds only the runner's file commands and the report: no staging left. */
function staging(run: BundledActionResult): string[] {
  return readdirSync(run.runnerTemp).filter(
    name => name !== FILE_COMMANDS_DIR && !name.startsWith('verify-model-report-')
  )
}

describeDocker('builds that outlive their limits', () => {
  let dir: string
  let image: ImageRef
  const started: string[] = []
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verify-model-outlive-'))
    image = await buildBusyboxImage()
  })
  afterAll(() => {
    for (const name of started)
      if (containerExists(name)) docker('rm', '--force', '--volumes', name)
    rmSync(dir, { recursive: true, force: true })
  })

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'item 2: %s kills and removes the container and the staging, with a failing verdict',
    async signal => {
      const { sba } = signedLedger(dir, image, { command: ['sleep', '600'], timeoutSeconds: 300 })
      let container = ''
      const run = await runBundledAction(
        { attestation: sba, 'public-key': publicKey, mode: 'reproduce' },
        {
          baseDir: dir,
          timeoutMs: 60_000,
          onSpawn: child =>
            whenBuilding(child.stdout!, name => {
              container = name
              started.push(name)
              child.kill(signal)
            })
        }
      )
      expect({ exit: run.exitCode, signal: run.signal, result: run.outputs.result }).toEqual({
        exit: 1,
        signal: null,
        result: 'unverifiable'
      })
      expect(run.report?.reason).toBe(
        `cancelled by ${signal}: the build container and the staging directory were removed`
      )
      expect(container).not.toBe('')
      expect(containerExists(container)).toBe(false)
      expect(staging(run)).toEqual([])
    },
    90_000
  )

  it('item 2: the post step removes the container and staging of a killed step', async () => {
    const { sba } = signedLedger(dir, image, { command: ['sleep', '600'], timeoutSeconds: 300 })
    let container = ''
    const run = await runBundledAction(
      { attestation: sba, 'public-key': publicKey, mode: 'reproduce' },
      {
        baseDir: dir,
        timeoutMs: 60_000,
        onSpawn: child =>
          whenBuilding(child.stdout!, name => {
            container = name
            started.push(name)
            child.kill('SIGKILL')
          })
      }
    )
    expect(run.signal).toBe('SIGKILL')
    expect(containerExists(container)).toBe(true)
    expect(staging(run)).not.toEqual([])
    const post = await runPostStep(run)
    expect({ exit: post.exitCode, stderr: post.stderr }).toEqual({ exit: 0, stderr: '' })
    expect(post.stdout).toContain(`removed container ${container}`)
    expect(containerExists(container)).toBe(false)
    expect(staging(run)).toEqual([])
  }, 90_000)

  it('item 3: more than 512 MiB of build log ends in a verdict with the log tail', async () => {
    const line = 'x'.repeat(99)
    const { sba } = signedLedger(dir, image, {
      command: ['sh', '-c', `yes ${line} | head -c 600000000; echo last line; exit 3`],
      timeoutSeconds: 600
    })
    const run = await runBundledAction(
      { attestation: sba, 'public-key': publicKey, mode: 'reproduce' },
      { baseDir: dir, timeoutMs: 240_000, maxStdoutChars: 4 * 2 ** 20 }
    )
    expect({ result: run.outputs.result, stderr: run.stderr.slice(0, 2000) }).toEqual({
      result: 'unverifiable',
      stderr: ''
    })
    expect(run.report?.reason).toBe('the build exited with code 3: see the log tail')
    expect(run.report?.detail).toMatch(new RegExp(`${line}\\nlast line\\n?$`))
    expect(staging(run)).toEqual([])
  }, 300_000)

  it('item 4: a timeout before the container exists still kills it', async () => {
    // A docker client that takes 3 s to create the container and ignores SIGTERM meanwhile (as
    // a run does while the daemon copies an image VOLUME's content).
    const bin = commandShim(dir, 'docker', `if [ "$1" = run ]; then trap '' TERM INT; sleep 3; fi`)
    const { sba } = signedLedger(dir, image, { command: ['sleep', '600'], timeoutSeconds: 1 })
    const run = await runBundledAction(
      { attestation: sba, 'public-key': publicKey, mode: 'reproduce' },
      { baseDir: dir, timeoutMs: 60_000, env: { PATH: `${bin}:${process.env.PATH}` } }
    )
    const name = /\b(verify-model-[0-9a-f]{12}): /.exec(run.stdout)?.[1] ?? ''
    started.push(name)
    expect(run.outputs.result).toBe('unverifiable')
    expect(run.report?.reason).toBe('build exceeded timeoutSeconds=1: killed')
    expect(run.durationMs).toBeLessThan(30_000)
    expect(containerExists(name)).toBe(false)
  }, 90_000)

  it('item 5: image VOLUMEs are size-capped tmpfs, /dev/shm is capped, no volume is left', async () => {
    const volumed = await buildBusyboxImage('volume-v1', ['VOLUME ["/vol", "/var/cache"]'])
    const before = new Set(docker('volume', 'ls', '--quiet').split('\n'))
    const { sba } = signedLedger(dir, volumed, {
      command: [
        'sh',
        '-c',
        'grep -E " (/vol|/var/cache|/dev/shm) " /proc/mounts; echo data > /vol/file && echo wrote; exit 3'
      ]
    })
    const run = await runBundledAction(
      { attestation: sba, 'public-key': publicKey, mode: 'reproduce' },
      { baseDir: dir, timeoutMs: 90_000 }
    )
    const tail = run.report?.detail ?? ''
    expect(tail).toMatch(/^tmpfs \/vol tmpfs [^ ]*size=1048576k/m)
    expect(tail).toMatch(/^tmpfs \/var\/cache tmpfs [^ ]*size=1048576k/m)
    expect(tail).toMatch(/^shm \/dev\/shm tmpfs [^ ]*size=65536k/m)
    expect(tail).toMatch(/^wrote$/m)
    const left = docker('volume', 'ls', '--quiet')
      .split('\n')
      .filter(volume => volume !== '' && !before.has(volume))
      .filter(volume => docker('volume', 'inspect', '--format', '{{.Labels}}', volume) === 'map[]')
    expect(left).toEqual([])
  }, 120_000)

  it('item 14: gpus: all needs allow-gpu, like network needs allow-network', async () => {
    const { sba } = signedLedger(dir, image, { gpus: 'all' })
    const refused = await runBundledAction(
      { attestation: sba, 'public-key': publicKey, mode: 'reproduce' },
      { baseDir: dir, timeoutMs: 60_000 }
    )
    expect(refused.outputs.result).toBe('invalid')
    expect(refused.report?.reason).toBe(
      "predicate.build.gpus: the ledger asks for gpus 'all' (device and driver access) but allow-gpu is false: rerun with allow-gpu if you accept a build with GPU access"
    )
    expect(refused.stdout).not.toMatch(/verify-model-[0-9a-f]{12}: /)
    const allowed = await runBundledAction(
      { attestation: sba, 'public-key': publicKey, mode: 'reproduce', 'allow-gpu': 'true' },
      { baseDir: dir, timeoutMs: 60_000 }
    )
    // This runner has no GPU: docker itself refuses, after the opt-in let the build through.
    expect(allowed.report?.reason).toMatch(/^docker could not start the build container \(exit 125/)
  }, 120_000)
})
