// Issue 13 item 2 through the CLI bundle: SIGTERM or SIGINT to `node dist/cli/index.js verify`
// removes the build container and the staging, and fails with the cancellation line.
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { spawnNode } from '../helpers/action-runner.js'
import {
  buildBusyboxImage,
  containerExists,
  describeDocker,
  docker,
  whenBuilding
} from '../helpers/docker.js'
import { repoRoot } from '../helpers/paths.js'
import { commandShim } from '../helpers/shims.js'
import type { ImageRef } from '../../src/protocol/ledger.js'
import { publicKey, signedLedger } from './ledgers.js'

const cliBundle = path.join(repoRoot, 'dist/cli/index.js')

interface CancelledRun {
  exit: number | null
  signal: NodeJS.Signals | null
  stdout: string
  lastLine: string | undefined
  /** What is left in the run's TMPDIR. */
  staging: string[]
  /** Whether `--report FILE` was written (the killed build's report is no verdict). */
  reportWritten: boolean
  /** From the signal to the exit. */
  cancelMs: number
}

describeDocker('a cancelled CLI verify', () => {
  let dir: string
  let image: ImageRef
  const started: string[] = []
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verify-model-cli-signals-'))
    image = await buildBusyboxImage()
  })
  afterAll(() => {
    for (const name of started)
      if (containerExists(name)) docker('rm', '--force', '--volumes', name)
    rmSync(dir, { recursive: true, force: true })
  })

  /** `verify` of a `sleep 600` build; `sendWhen` calls `send` at the moment to signal it. */
  async function cancelledVerify(
    signal: NodeJS.Signals,
    sendWhen: (child: ChildProcess, send: () => void) => void,
    env: NodeJS.ProcessEnv = {}
  ): Promise<CancelledRun> {
    const { sba } = signedLedger(dir, image, { command: ['sleep', '600'], timeoutSeconds: 300 })
    // The CLI stages under os.tmpdir(), which is TMPDIR: a directory of its own shows what is left.
    const tmpdir = mkdtempSync(path.join(dir, 'tmpdir-'))
    const report = `${tmpdir}-report.json`
    let sentAt = NaN
    const run = await spawnNode(cliBundle, {
      args: [
        'verify',
        '--reproduce-only',
        '--sba',
        sba,
        '--public-key',
        publicKey,
        '--report',
        report
      ],
      cwd: dir,
      env: { ...process.env, ...env, TMPDIR: tmpdir },
      timeoutMs: 60_000,
      onSpawn: child =>
        sendWhen(child, () => {
          sentAt = Date.now()
          child.kill(signal)
        })
    })
    return {
      exit: run.exitCode,
      signal: run.signal,
      stdout: run.stdout,
      lastLine: run.stderr.trimEnd().split('\n').at(-1),
      staging: readdirSync(tmpdir),
      reportWritten: existsSync(report),
      cancelMs: Date.now() - sentAt
    }
  }

  /** The handler's exit, fast; nothing of the killed build's own verdict (exit 137) after it. */
  function expectCancelled(run: CancelledRun, signal: NodeJS.Signals) {
    expect({ ...run, cancelMs: run.cancelMs < 30_000 }).toEqual({
      exit: 1,
      signal: null,
      stdout: '',
      lastLine: `unverifiable: cancelled by ${signal}: the build container and the staging directory were removed`,
      staging: [],
      reportWritten: false,
      cancelMs: true
    })
  }

  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s while the build runs removes the container and the staging, and exits 1',
    async signal => {
      let container = ''
      const run = await cancelledVerify(signal, (child, send) =>
        whenBuilding(child.stderr!, name => {
          container = name
          started.push(name)
          send()
        })
      )
      expectCancelled(run, signal)
      expect(container).not.toBe('')
      expect(containerExists(container)).toBe(false)
    },
    90_000
  )

  it('SIGTERM during the source fetch leaves no fetched repository behind', async () => {
    const fetching = path.join(dir, 'fetching')
    const bin = commandShim(
      dir,
      'git',
      `case " $* " in *" fetch "*) : > '${fetching}'; sleep 2 ;; esac`
    )
    const run = await cancelledVerify(
      'SIGTERM',
      (child, send) => {
        const poll = setInterval(() => {
          if (!existsSync(fetching)) return
          clearInterval(poll)
          send()
        }, 50)
        child.once('close', () => clearInterval(poll))
      },
      { PATH: `${bin}:${process.env.PATH}` }
    )
    expectCancelled(run, 'SIGTERM')
  }, 90_000)
})
