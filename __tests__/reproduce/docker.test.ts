import { execFileSync } from 'node:child_process'
import { beforeAll, describe, expect, it } from '@jest/globals'
import { run as realRun, type Run, type RunResult } from '../../src/exec.js'
import type { ImageRef } from '../../src/protocol/ledger.js'
import { familiarName, preflight, pullImage } from '../../src/reproduce/docker.js'
import { buildBusyboxImage, describeDocker, localRegistry } from '../helpers/docker.js'

const result = (exitCode: number, stdout = '', stderr = ''): RunResult => ({
  exitCode,
  stdout,
  stderr
})

/** A fake docker answering each subcommand from a queue of results; records the calls. */
function scriptedDocker(answers: Record<string, RunResult[]>) {
  const calls: string[][] = []
  const run: Run = async (_file, args) => {
    calls.push([...args])
    const next = answers[args[0]]?.shift()
    if (next === undefined) throw new Error(`unexpected docker ${args.join(' ')}`)
    return next
  }
  return { run, calls }
}

const image: ImageRef = {
  uri: 'oci://ghcr.io/acme/trainer',
  repository: 'ghcr.io/acme/trainer',
  sha256: 'ab'.repeat(32),
  reference: `ghcr.io/acme/trainer@sha256:${'ab'.repeat(32)}`,
  platform: 'linux/amd64'
}
const inspected = (...repoDigests: string[]) => result(0, `${JSON.stringify(repoDigests)}\n`)
const notLocal = result(1, '', 'Error: No such image: x')

describe('preflight', () => {
  it('names the socket-permission case and its fix', async () => {
    const docker = scriptedDocker({
      version: [
        result(
          1,
          '',
          'permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get "http://%2Fvar%2Frun%2Fdocker.sock/v1.24/version": dial unix /var/run/docker.sock: connect: permission denied\n'
        )
      ]
    })
    await expect(preflight(docker.run)).rejects.toMatchObject({
      verdict: 'unverifiable',
      message: expect.stringMatching(
        /permission denied .*\/var\/run\/docker\.sock.*add the user to the docker group or run with sudo/
      )
    })
  })

  it('says when docker is not installed', async () => {
    const run: Run = async () => {
      throw new Error('Unable to locate executable file: docker')
    }
    await expect(preflight(run)).rejects.toMatchObject({
      verdict: 'unverifiable',
      message: expect.stringContaining('docker is not installed or not on PATH')
    })
  })

  it('says when the daemon does not answer', async () => {
    const docker = scriptedDocker({
      version: [
        result(
          1,
          '',
          'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?'
        )
      ]
    })
    await expect(preflight(docker.run)).rejects.toMatchObject({
      verdict: 'unverifiable',
      message: expect.stringMatching(
        /^the Docker daemon does not answer \(Cannot connect.*scripts\/services\.sh up/
      )
    })
  })
})

describe('pullImage', () => {
  const instant = async () => undefined

  it('pulls by digest for the platform, retrying transient errors with backoff', async () => {
    const waits: number[] = []
    const docker = scriptedDocker({
      image: [notLocal, inspected(image.reference)],
      pull: [
        result(
          1,
          '',
          'Error response from daemon: Get "https://ghcr.io/v2/": net/http: TLS handshake timeout'
        ),
        result(1, '', 'i/o timeout'),
        result(0)
      ]
    })
    await pullImage(docker.run, image, { backoffMs: 100, sleep: async ms => void waits.push(ms) })
    expect(waits).toEqual([100, 200])
    expect(docker.calls.filter(call => call[0] === 'pull')).toEqual(
      Array(3).fill(['pull', '--platform', 'linux/amd64', image.reference])
    )
  })

  it('does not retry what no retry can change, and names the reference and the registry message', async () => {
    const docker = scriptedDocker({
      image: [notLocal],
      pull: [
        result(
          1,
          '',
          `Error response from daemon: manifest for ${image.reference} not found: manifest unknown: manifest unknown\n`
        )
      ]
    })
    await expect(pullImage(docker.run, image, { sleep: instant })).rejects.toMatchObject({
      verdict: 'unverifiable',
      message: expect.stringMatching(new RegExp(`cannot pull ${image.reference}.*manifest unknown`))
    })
    expect(docker.calls.filter(call => call[0] === 'pull')).toHaveLength(1)
  })

  it('gives up after the retries', async () => {
    const docker = scriptedDocker({
      image: [notLocal],
      pull: Array.from({ length: 3 }, () => result(1, '', 'connection reset by peer'))
    })
    await expect(
      pullImage(docker.run, image, { retries: 2, sleep: instant })
    ).rejects.toMatchObject({
      verdict: 'unverifiable',
      message: expect.stringContaining('connection reset by peer')
    })
  })

  it('skips the pull when the daemon already holds that repo digest', async () => {
    const docker = scriptedDocker({
      image: [inspected(`${image.repository}@sha256:${'00'.repeat(32)}`, image.reference)]
    })
    await pullImage(docker.run, image)
    expect(docker.calls).toEqual([
      ['image', 'inspect', '--format', '{{json .RepoDigests}}', image.reference]
    ])
  })

  it('is invalid when the pulled image does not report the digest', async () => {
    const docker = scriptedDocker({
      image: [notLocal, inspected(`${image.repository}@sha256:${'00'.repeat(32)}`)],
      pull: [result(0)]
    })
    await expect(pullImage(docker.run, image, { sleep: instant })).rejects.toMatchObject({
      verdict: 'invalid',
      message: expect.stringContaining('image digest mismatch')
    })
  })
})

describe('familiarName', () => {
  it('shortens Docker Hub names the way the daemon reports them', () => {
    expect(familiarName('docker.io/library/python@sha256:aa')).toBe('python@sha256:aa')
    expect(familiarName('index.docker.io/acme/x@sha256:aa')).toBe('acme/x@sha256:aa')
    expect(familiarName('ghcr.io/library/python@sha256:aa')).toBe(
      'ghcr.io/library/python@sha256:aa'
    )
  })
})

describeDocker('docker against the real daemon and local registry', () => {
  // An image of its own: this file removes it from the daemon, other files run theirs meanwhile.
  let busybox: ImageRef
  beforeAll(async () => {
    busybox = await buildBusyboxImage('pull-test')
  })

  it('passes the preflight', async () => {
    await expect(preflight(realRun)).resolves.toBeUndefined()
  })

  it('pulls the pinned image by digest and finds its repo digest', async () => {
    execFileSync('docker', ['image', 'rm', '--force', busybox.reference], { stdio: 'ignore' })
    await pullImage(realRun, busybox)
    const repoDigests = execFileSync(
      'docker',
      ['image', 'inspect', '--format', '{{json .RepoDigests}}', busybox.reference],
      { encoding: 'utf8' }
    )
    expect(JSON.parse(repoDigests)).toContain(busybox.reference)
  })

  it('is unverifiable, with the registry message, for a digest the registry does not have', async () => {
    const unknown = 'ee'.repeat(32)
    const missing = {
      ...busybox,
      sha256: unknown,
      reference: `${busybox.repository}@sha256:${unknown}`
    }
    await expect(
      pullImage(realRun, missing, { sleep: async () => undefined })
    ).rejects.toMatchObject({
      verdict: 'unverifiable',
      message: expect.stringMatching(
        new RegExp(
          `cannot pull ${localRegistry}/verify-model-test/busybox@sha256:${unknown}.*manifest unknown`
        )
      )
    })
  })
})
