import { mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from '@jest/globals'
import type { ImageRef } from '../../src/protocol/ledger.js'
import type { ApiPullRequest, DockerApi, PullMessage } from '../../src/reproduce/docker-api.js'
import { familiarName, pullImage, PullProgress } from '../../src/reproduce/pull.js'
import { result, scriptedDocker } from '../helpers/scripted-docker.js'

const image: ImageRef = {
  uri: 'oci://ghcr.io/acme/trainer',
  repository: 'ghcr.io/acme/trainer',
  sha256: 'ab'.repeat(32),
  reference: `ghcr.io/acme/trainer@sha256:${'ab'.repeat(32)}`,
  platform: 'linux/amd64'
}
const inspected = (...repoDigests: string[]) => result(0, `${JSON.stringify(repoDigests)}\n`)
const notLocal = result(1, '', 'Error: No such image: x')
const instant = async () => undefined
/** No Docker configuration: an anonymous pull. */
const anonymous = { DOCKER_CONFIG: path.join(os.tmpdir(), 'verify-model-no-docker-config') }

/** What one pull of the fake daemon does: send messages, then end, fail, or wait for the abort. */
interface PullScript {
  messages?: PullMessage[]
  /** A Downloading message of this many more bytes every 20 ms until aborted. */
  dripBytes?: number
  /** Ends the drip after this many messages. */
  dripCount?: number
  fail?: string
  hang?: boolean
}

function scriptedApi(...scripts: PullScript[]) {
  const requests: ApiPullRequest[] = []
  const signals: AbortSignal[] = []
  const aborted = (signal: AbortSignal) =>
    new Promise<never>((_, reject) =>
      signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true })
    )
  const api: DockerApi = {
    pull: async (request, onMessage, signal) => {
      requests.push(request)
      signals.push(signal)
      const script = scripts.shift()
      if (script === undefined) throw new Error('unexpected pull')
      for (const message of script.messages ?? []) onMessage(message)
      if (script.dripBytes !== undefined) {
        let current = 0
        for (let sent = 0; sent < (script.dripCount ?? Infinity); sent++) {
          await Promise.race([new Promise(resolve => setTimeout(resolve, 20)), aborted(signal)])
          current += script.dripBytes
          onMessage({ id: 'aaaaaaaaaaaa', status: 'Downloading', progressDetail: { current } })
        }
      }
      if (script.hang) await aborted(signal)
      if (script.fail !== undefined) throw new Error(script.fail)
    }
  }
  return { api, requests, signals, daemon: { api, endpoint: 'unix:///var/run/docker.sock' } }
}

describe('pullImage through the daemon API', () => {
  it('pulls the digest for the platform, retrying transient errors with backoff', async () => {
    const waits: number[] = []
    const docker = scriptedDocker({ image: [notLocal, inspected(image.reference)] })
    const fake = scriptedApi(
      { fail: 'Get "https://ghcr.io/v2/": net/http: TLS handshake timeout' },
      { fail: 'i/o timeout' },
      {}
    )
    await pullImage(docker.run, image, {
      backoffMs: 100,
      sleep: async ms => void waits.push(ms),
      daemon: fake.daemon,
      env: anonymous
    })
    expect(waits).toEqual([100, 200])
    expect(fake.requests).toEqual(
      Array(3).fill({
        repository: 'ghcr.io/acme/trainer',
        digest: `sha256:${'ab'.repeat(32)}`,
        platform: 'linux/amd64',
        registryAuth: undefined
      })
    )
    expect(docker.calls.map(call => call[0])).toEqual(['image', 'image'])
  })

  it('sends the credentials docker login stored for the registry', async () => {
    const config = mkdtempSync(path.join(os.tmpdir(), 'verify-model-docker-config-'))
    writeFileSync(
      path.join(config, 'config.json'),
      JSON.stringify({
        auths: { 'ghcr.io': { auth: Buffer.from('octo:s3cret').toString('base64') } }
      })
    )
    const fake = scriptedApi({})
    const docker = scriptedDocker({ image: [notLocal, inspected(image.reference)] })
    await pullImage(docker.run, image, { daemon: fake.daemon, env: { DOCKER_CONFIG: config } })
    const header = fake.requests[0].registryAuth
    expect(JSON.parse(Buffer.from(header ?? '', 'base64url').toString())).toEqual({
      username: 'octo',
      password: 's3cret',
      serveraddress: 'ghcr.io'
    })
  })

  it('does not retry what no retry can change, and names the reference and the registry message', async () => {
    const fake = scriptedApi({
      fail: `manifest for ${image.reference} not found: manifest unknown: manifest unknown`
    })
    const docker = scriptedDocker({ image: [notLocal] })
    await expect(
      pullImage(docker.run, image, { sleep: instant, daemon: fake.daemon, env: anonymous })
    ).rejects.toMatchObject({
      verdict: 'unverifiable',
      code: 'IMAGE_PULL',
      message: expect.stringMatching(new RegExp(`cannot pull ${image.reference}.*manifest unknown`))
    })
    expect(fake.requests).toHaveLength(1)
  })

  it('gives up after the retries', async () => {
    const fake = scriptedApi(
      ...Array.from({ length: 3 }, () => ({ fail: 'connection reset by peer' }))
    )
    await expect(
      pullImage(scriptedDocker({ image: [notLocal] }).run, image, {
        retries: 2,
        sleep: instant,
        daemon: fake.daemon,
        env: anonymous
      })
    ).rejects.toMatchObject({
      verdict: 'unverifiable',
      message: expect.stringContaining('connection reset by peer')
    })
    expect(fake.requests).toHaveLength(3)
  })

  it('ends a pull below the minimum throughput, with the numbers, and stops it', async () => {
    // 10 bytes every 20 ms is 500 B/s; windows of a quarter of the 2 s deadline.
    const fake = scriptedApi({ dripBytes: 10 })
    const started = Date.now()
    await expect(
      pullImage(scriptedDocker({ image: [notLocal] }).run, image, {
        timeoutMs: 2000,
        minBytesPerSecond: 1024,
        daemon: fake.daemon,
        env: anonymous
      })
    ).rejects.toMatchObject({
      verdict: 'unverifiable',
      code: 'IMAGE_PULL',
      message: expect.stringMatching(
        new RegExp(
          `^environment: docker pull ${image.reference}: \\d+ bytes in the last 0\\.5 s \\(\\d+ B/s\\), below the minimum of 1024 B/s \\(VERIFY_MODEL_MIN_PULL_RATE\\)$`
        )
      )
    })
    expect(Date.now() - started).toBeLessThan(1500)
    expect(fake.signals[0].aborted).toBe(true)
  })

  it('lets a pull at the minimum throughput run for longer than a window', async () => {
    // 1000 bytes every 20 ms (50 KB/s) for 50 messages: about 1 s, two windows of 0.5 s.
    const fake = scriptedApi({ dripBytes: 1000, dripCount: 50 })
    const lines: string[] = []
    await pullImage(scriptedDocker({ image: [notLocal, inspected(image.reference)] }).run, image, {
      timeoutMs: 2000,
      minBytesPerSecond: 1024,
      daemon: fake.daemon,
      env: anonymous,
      onProgress: line => lines.push(line)
    })
    expect(lines.at(-1)).toBe('pulling: 0 of 1 layer(s) downloaded, 0 extracted, 48.8 KiB received')
  })

  it('meets the total deadline when nothing comes and there is no minimum', async () => {
    const fake = scriptedApi({ hang: true })
    await expect(
      pullImage(scriptedDocker({ image: [notLocal] }).run, image, {
        timeoutMs: 300,
        minBytesPerSecond: 0,
        daemon: fake.daemon,
        env: anonymous
      })
    ).rejects.toMatchObject({
      verdict: 'unverifiable',
      message: `environment: docker pull ${image.reference} did not finish within the deadline of 0.3 s (VERIFY_MODEL_PULL_TIMEOUT_MS)`
    })
  })

  it('skips the pull when the daemon already holds that repo digest', async () => {
    const docker = scriptedDocker({
      image: [inspected(`${image.repository}@sha256:${'00'.repeat(32)}`, image.reference)]
    })
    const fake = scriptedApi()
    await pullImage(docker.run, image, { daemon: fake.daemon, env: anonymous })
    expect(docker.calls).toEqual([
      ['image', 'inspect', '--format', '{{json .RepoDigests}}', image.reference]
    ])
    expect(fake.requests).toEqual([])
  })

  it('is invalid when the pulled image does not report the digest', async () => {
    const docker = scriptedDocker({
      image: [notLocal, inspected(`${image.repository}@sha256:${'00'.repeat(32)}`)]
    })
    await expect(
      pullImage(docker.run, image, { daemon: scriptedApi({}).daemon, env: anonymous })
    ).rejects.toMatchObject({
      verdict: 'invalid',
      message: expect.stringContaining('image digest mismatch')
    })
  })
})

describe('pullImage from a daemon without a unix socket here', () => {
  it('runs docker pull under the deadline alone, and says the throughput is not checked', async () => {
    const lines: string[] = []
    const docker = scriptedDocker({
      image: [notLocal, inspected(image.reference)],
      pull: [result(1, '', 'i/o timeout'), result(0)]
    })
    await pullImage(docker.run, image, {
      sleep: instant,
      daemon: { endpoint: 'tcp://build-host:2375' },
      env: anonymous,
      onProgress: line => lines.push(line)
    })
    expect(docker.calls.filter(call => call[0] === 'pull')).toEqual(
      Array(2).fill(['pull', '--platform', 'linux/amd64', image.reference])
    )
    expect(lines).toEqual([
      'pull throughput not checked: the Docker endpoint tcp://build-host:2375 is not a unix socket (only VERIFY_MODEL_PULL_TIMEOUT_MS applies)'
    ])
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

  it('counts bytes received and extracted from the API messages, per layer, never backwards', () => {
    const progress = new PullProgress(undefined)
    const downloading = (id: string, current: number) =>
      progress.message({ id, status: 'Downloading', progressDetail: { current, total: 9000 } })
    progress.message({ id: 'sha256:' + 'ab'.repeat(32), status: 'Pulling from acme/trainer' })
    downloading('aaaaaaaaaaaa', 1000)
    downloading('bbbbbbbbbbbb', 500)
    downloading('aaaaaaaaaaaa', 3000)
    downloading('aaaaaaaaaaaa', 2000)
    progress.message({
      id: 'aaaaaaaaaaaa',
      status: 'Extracting',
      progressDetail: { current: 700, total: 3000 }
    })
    expect(progress.bytesMoved).toBe(3000 + 500 + 700)
  })
})
