import { describe, expect, it } from '@jest/globals'
import { containerFailure } from '../../src/reproduce/index.js'
import { PullProgress } from '../../src/reproduce/docker.js'

const limits = { timeoutSeconds: 60, memoryBytes: 2 ** 30 }
const ended = (fields: object) => ({
  exitCode: 0,
  durationMs: 10,
  logTail: 'tail',
  timedOut: false,
  ...fields
})

describe('containerFailure: how a build container ended, as a verdict', () => {
  it.each([
    [
      { timedOut: true, exitCode: 137 },
      'BUILD_TIMEOUT',
      'build exceeded timeoutSeconds=60: killed'
    ],
    [
      { exitCode: 125, daemonLost: 'connection reset' },
      'DAEMON_LOST',
      'the Docker daemon went away'
    ],
    [
      { exitCode: 137, oomKilled: true },
      'BUILD_OOM',
      'the build ran out of memory (limit 1 GiB, exit 137)'
    ],
    [
      {
        exitCode: 125,
        logTail: 'docker: Error response from daemon: could not select device driver'
      },
      'BUILD_START',
      'exit 125: docker: Error response from daemon: could not select device driver'
    ],
    [{ exitCode: 2 }, 'BUILD_FAILED', 'the build exited with code 2: see the log tail']
  ])('%j is %s', (fields, code, message) => {
    const failure = containerFailure(ended(fields), limits)
    expect(failure).toMatchObject({
      verdict: 'unverifiable',
      code,
      message: expect.stringContaining(message)
    })
    expect(failure?.detail).toBe(ended(fields).logTail)
  })

  it('a build that exited 0 is no failure', () => {
    expect(containerFailure(ended({}), limits)).toBeUndefined()
  })
})

describe('PullProgress', () => {
  it('counts layers from docker pull output and reports every few seconds and at the end', () => {
    const lines: string[] = []
    let now = 0
    const progress = new PullProgress(
      line => lines.push(line),
      () => now
    )
    progress.output(
      Buffer.from(
        'v1: Pulling from acme/trainer\naaaaaaaaaaaa: Pulling fs layer\nbbbbbbbbbbbb: Pulling fs layer\n'
      )
    )
    now = 6000
    progress.output(Buffer.from('aaaaaaaaaaaa: Download complete\naaaaaaaaaaaa: Pull comp'))
    progress.output(Buffer.from('lete\nbbbbbbbbbbbb: Downloading\n'))
    now = 7000
    progress.output(Buffer.from('bbbbbbbbbbbb: Download complete\n'))
    progress.output(Buffer.from('bbbbbbbbbbbb: Pull complete\nDigest: sha256:0000\n'))
    progress.done()
    expect(lines).toEqual([
      'pulling: 1 of 2 layer(s) downloaded, 0 extracted',
      'pulling: 2 of 2 layer(s) downloaded, 2 extracted'
    ])
  })
})
