import { describe, expect, it } from '@jest/globals'
import { containerFailure } from '../../src/reproduce/index.js'

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
