import { execFileSync } from 'node:child_process'
import { beforeAll, describe, expect, it } from '@jest/globals'
import { run as realRun, type Run } from '../../src/exec.js'
import type { ImageRef } from '../../src/protocol/ledger.js'
import { preflight } from '../../src/reproduce/docker.js'
import { pullImage } from '../../src/reproduce/pull.js'
import { buildBusyboxImage, describeDocker, localRegistry } from '../helpers/docker.js'
import { result, scriptedDocker } from '../helpers/scripted-docker.js'

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
