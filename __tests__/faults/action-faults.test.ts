// Nothing lost, nothing false: every fault the runner can meet, run through the bundled action
// (node dist/index.js) with real processes on 127.0.0.1, fails with its verdict and a one-line
// reason, writes no capability, and leaves no container and no staging directory behind.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { escapeHtml } from '../../src/text/sanitize.js'
import { sha256, utf8 } from '../../src/protocol/encoding.js'
import { signEnvelope } from '../../src/protocol/envelope.js'
import { privateKeyFromSeed, publicKeyPem } from '../../src/protocol/keys.js'
import { createStatement, type BuildSpec, type ImageRef } from '../../src/protocol/ledger.js'
import {
  FILE_COMMANDS_DIR,
  runBundledAction,
  type BundledActionResult
} from '../helpers/action-runner.js'
import { buildBusyboxImage, describeDocker } from '../helpers/docker.js'
import { makeGitRepo } from '../helpers/git.js'
import { recordCounts } from '../hostile/fuzz.js'
import { startSecondDaemon, type SecondDaemon } from './second-daemon.js'

interface Fault {
  name: string
  build?: Partial<BuildSpec>
  /** Changes the pinned image (registry, digest). */
  image?: (image: ImageRef) => { uri: string; sha256: string }
  /** Runner environment for the action (limits). */
  env?: Record<string, string>
  /** Uses the second daemon, stopped once the build is running. */
  stopsDaemon?: boolean
  result: 'invalid' | 'unverifiable'
  reason: RegExp
}

const FAULTS: Fault[] = [
  {
    name: 'registry down',
    image: image => ({
      uri: 'oci://127.0.0.1:5999/verify-model-test/busybox',
      sha256: image.sha256
    }),
    result: 'unverifiable',
    reason:
      /^environment: cannot pull 127\.0\.0\.1:5999\/verify-model-test\/busybox@sha256:[0-9a-f]{64} \(platform linux\/amd64\): .*connection refused/
  },
  {
    name: 'image digest unknown to the registry',
    image: image => ({ uri: image.uri, sha256: 'ee'.repeat(32) }),
    result: 'unverifiable',
    reason: /^environment: cannot pull .*@sha256:(ee){32} .*manifest unknown/
  },
  {
    name: 'network asked without allow-network',
    build: { network: 'bridge' },
    result: 'invalid',
    reason:
      /^predicate\.build\.network: the ledger asks for network 'bridge' but allow-network is false/
  },
  {
    name: 'Docker daemon stopped mid-build',
    build: { command: ['sh', '-c', 'trap "exit 143" TERM; echo started; sleep 60 & wait'] },
    stopsDaemon: true,
    result: 'unverifiable',
    reason: /^the Docker daemon went away during the build \(.*\): restart it and rerun$/
  },
  {
    name: 'build exceeds its memory limit',
    build: { command: ['tail', '/dev/zero'] },
    env: { VERIFY_MODEL_MEMORY_LIMIT: '64m' },
    result: 'unverifiable',
    reason:
      /^the build ran out of memory \(limit 64 MiB, exit 137\): run on a runner with more memory$/
  },
  {
    name: 'build fills /out beyond the size cap',
    build: { command: ['sh', '-c', 'head -c 3000000 /dev/zero > /out/model.bin'] },
    env: { VERIFY_MODEL_MAX_OUTPUT: '1m' },
    result: 'unverifiable',
    reason: /^the build left more than 1 MiB in \/out \(the output size cap\)/
  },
  {
    name: 'build never ends',
    build: { command: ['sleep', '600'], timeoutSeconds: 2 },
    result: 'unverifiable',
    reason: /^build exceeded timeoutSeconds=2: killed$/
  },
  {
    name: 'build fails',
    build: { command: ['sh', '-c', 'echo "boom" >&2; exit 3'] },
    result: 'unverifiable',
    reason: /^the build exited with code 3: see the log tail$/
  }
]

describeDocker('nothing lost, nothing false: faults through the bundled action', () => {
  let dir: string
  let daemon: SecondDaemon | undefined
  const runs = new Map<string, BundledActionResult & { containers: string[] }>()

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verify-model-faults-'))
    const image = await buildBusyboxImage()
    const repo = path.join(dir, 'source')
    const commit = makeGitRepo(repo, { 'README.md': '# faults\n' })
    const key = privateKeyFromSeed(sha256(utf8('action-faults')))
    daemon = await startSecondDaemon()

    const runFault = async (fault: Fault) => {
      const statement = createStatement({
        sourceUri: `git+file://${repo}`,
        gitCommit: commit,
        dependencies: [],
        image: fault.image?.(image) ?? { uri: image.uri, sha256: image.sha256 },
        build: {
          command: ['true'],
          sourceDateEpoch: 1700000000,
          timeoutSeconds: 60,
          ...fault.build
        }
      })
      const sba = path.join(dir, `${fault.name.replace(/\W+/g, '-')}.sba.json`)
      writeFileSync(sba, signEnvelope(statement, [key]))
      const env = { ...fault.env, ...(fault.stopsDaemon ? { DOCKER_HOST: daemon!.host } : {}) }
      const action = runBundledAction(
        { attestation: sba, 'public-key': publicKeyPem(key.publicKey), mode: 'reproduce' },
        { baseDir: dir, env, timeoutMs: 90_000 }
      )
      if (fault.stopsDaemon) await stopWhenBuilding(daemon!)
      const run = await action
      const containers = [...run.stdout.matchAll(/\b(verify-model-[0-9a-f]{12}): /g)].map(m => m[1])
      runs.set(fault.name, { ...run, containers })
    }
    // Independent runs, in parallel: the slowest (a registry that refuses, retried with backoff)
    // sets the pace.
    await Promise.all(FAULTS.map(runFault))
  }, 120_000)

  afterAll(async () => {
    await daemon?.remove()
    if (dir) rmSync(dir, { recursive: true, force: true })
    const survived = [...runs.values()].filter(run => run.exitCode === 1).length
    const slowestMs = Math.max(...[...runs.values()].map(run => run.durationMs))
    recordCounts('faults-through-the-action', { faults: FAULTS.length, survived, slowestMs })
  })

  it.each(FAULTS.map(fault => [fault.name, fault] as const))('%s', (_, fault) => {
    const run = runs.get(fault.name)!
    const report = run.report!
    const context = `--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`
    expect({ exit: run.exitCode, result: run.outputs.result, context }).toMatchObject({
      exit: 1,
      result: fault.result
    })
    expect(report.reason).toMatch(fault.reason)
    expect(report.reason).toMatch(/^[^\n]+$/)
    expect(run.outputs).not.toHaveProperty('capability')
    expect(run.stdout).not.toMatch(/capability: ocap1:/)
    expect(run.summary).toContain(`<b>${escapeHtml(report.reason)}</b>`)
    expect(run.commands).toContainEqual({
      command: 'error',
      properties: { title: `verify-model: ${fault.result}` },
      message: report.reason
    })
    // No staging directory left: RUNNER_TEMP holds the runner's file commands and the report.
    expect(readdirSync(run.runnerTemp).sort()).toEqual(
      [FILE_COMMANDS_DIR, path.basename(run.outputs.report)].sort()
    )
    if (fault.stopsDaemon) {
      // The daemon is gone, and with it every process of the build.
      expect(run.containers).toHaveLength(1)
      expect(daemon!.leftovers()).toEqual([])
    } else {
      for (const name of run.containers) {
        const left = execFileSync(
          'docker',
          ['ps', '--all', '--quiet', '--filter', `name=^/${name}$`],
          { encoding: 'utf8' }
        )
        expect(left.trim()).toBe('')
      }
    }
  })
})

/** Waits until a build container runs on the daemon, then stops the daemon. */
async function stopWhenBuilding(daemon: SecondDaemon): Promise<void> {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    const names = await daemon
      .docker('ps', '--filter', 'name=^/verify-model-', '--format', '{{.Names}}')
      .catch(() => '')
    if (names.trim() !== '') {
      await new Promise(resolve => setTimeout(resolve, 500))
      return daemon.stop()
    }
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  throw new Error('no build container appeared on the second daemon within 60 s')
}
