import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { run as realRun, type Run } from '../../src/exec.js'
import type { ImageRef } from '../../src/protocol/ledger.js'
import { preflight } from '../../src/reproduce/docker.js'
import { pullImage } from '../../src/reproduce/pull.js'
import { buildBusyboxImage, describeDocker, localRegistry } from '../helpers/docker.js'
import { imageLayer, startTestRegistry, type TestRegistry } from '../helpers/registry.js'
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

  describe('a private registry', () => {
    let registry: TestRegistry
    let config: string
    beforeAll(async () => {
      registry = await startTestRegistry({
        ...(await imageLayer([{ name: 'etc/verify-model-private', content: 'private\n' }])),
        basicAuth: 'octo:s3cret'
      })
      // What `docker login` leaves in the configuration directory.
      config = mkdtempSync(path.join(os.tmpdir(), 'verify-model-docker-config-'))
      writeFileSync(
        path.join(config, 'config.json'),
        JSON.stringify({
          auths: {
            [registry.image.repository.split('/')[0]]: {
              auth: Buffer.from('octo:s3cret').toString('base64')
            }
          }
        })
      )
    })
    afterAll(async () => {
      await registry.close()
      execFileSync('docker', ['image', 'rm', '--force', registry.image.reference], {
        stdio: 'ignore'
      })
      rmSync(config, { recursive: true, force: true })
    })

    it('refuses an anonymous pull, with the registry message', async () => {
      await expect(
        pullImage(realRun, registry.image, {
          sleep: async () => undefined,
          env: { DOCKER_CONFIG: path.join(config, 'absent') }
        })
      ).rejects.toMatchObject({
        verdict: 'unverifiable',
        message: expect.stringMatching(
          /^environment: cannot pull .*(unauthorized|no basic auth credentials)/
        )
      })
    })

    it('pulls with the credentials docker login stored', async () => {
      await pullImage(realRun, registry.image, { env: { DOCKER_CONFIG: config } })
      const repoDigests = execFileSync(
        'docker',
        ['image', 'inspect', '--format', '{{json .RepoDigests}}', registry.image.reference],
        { encoding: 'utf8' }
      )
      expect(JSON.parse(repoDigests)).toContain(registry.image.reference)
      expect(registry.layerBytesSent()).toBeGreaterThan(0)
    })
  })
})
