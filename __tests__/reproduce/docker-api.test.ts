import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import {
  connectDockerApi,
  unixSocketApi,
  type PullMessage
} from '../../src/reproduce/docker-api.js'
import { result, scriptedDocker } from '../helpers/scripted-docker.js'

const request = {
  repository: 'ghcr.io/acme/trainer',
  digest: `sha256:${'ab'.repeat(32)}`,
  platform: 'linux/amd64',
  registryAuth: 'eyJ1c2VybmFtZSI6Im9jdG8ifQ'
}

describe('unixSocketApi', () => {
  let dir: string
  let socketPath: string
  let server: http.Server
  let handle: (req: http.IncomingMessage, res: http.ServerResponse) => void
  const seen: { method?: string; url?: string; auth?: string | string[] }[] = []
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verify-model-docker-api-'))
    socketPath = path.join(dir, 'docker.sock')
    seen.length = 0
    server = http.createServer((req, res) => {
      seen.push({ method: req.method, url: req.url, auth: req.headers['x-registry-auth'] })
      handle(req, res)
    })
    await new Promise<void>(resolve => server.listen(socketPath, resolve))
  })
  afterEach(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
    rmSync(dir, { recursive: true, force: true })
  })

  const pull = (signal = new AbortController().signal) => {
    const messages: PullMessage[] = []
    const done = unixSocketApi(socketPath).pull(request, message => messages.push(message), signal)
    return { messages, done }
  }

  it('posts /images/create for the digest and platform with the auth, and streams the messages split anywhere', async () => {
    handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"status":"Pulling from acme/trainer","id":"sha256:ab"}\r\n{"status":"Downl')
      res.write('oading","progressDetail":{"current":512,"total":1024},"id":"aaaaaaaaaaaa"}\r\n')
      res.end('{"status":"Digest: sha256:ab"}')
    }
    const { messages, done } = pull()
    await done
    expect(seen).toEqual([
      {
        method: 'POST',
        url: `/images/create?fromImage=ghcr.io%2Facme%2Ftrainer&tag=sha256%3A${'ab'.repeat(32)}&platform=linux%2Famd64`,
        auth: request.registryAuth
      }
    ])
    expect(messages).toEqual([
      { status: 'Pulling from acme/trainer', id: 'sha256:ab' },
      {
        status: 'Downloading',
        progressDetail: { current: 512, total: 1024 },
        id: 'aaaaaaaaaaaa'
      },
      { status: 'Digest: sha256:ab' }
    ])
  })

  it("rejects with the daemon's message: an error in the stream, or a refusal", async () => {
    handle = (_req, res) => {
      res.writeHead(200)
      res.end(
        '{"status":"Pulling fs layer","id":"aaaaaaaaaaaa"}\n{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized"}\n'
      )
    }
    await expect(pull().done).rejects.toThrow('unauthorized: authentication required')
    handle = (_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end('{"message":"pull access denied for acme/trainer"}\n')
    }
    await expect(pull().done).rejects.toThrow('pull access denied for acme/trainer')
  })

  it('closes the connection when aborted (the daemon then stops the pull)', async () => {
    let closed: Promise<void> = Promise.resolve()
    handle = (req, res) => {
      res.writeHead(200)
      res.write('{"status":"Downloading","id":"aaaaaaaaaaaa"}\n')
      closed = new Promise(resolve => req.socket.on('close', () => resolve()))
    }
    const controller = new AbortController()
    const { messages, done } = pull(controller.signal)
    while (messages.length === 0) await new Promise(resolve => setTimeout(resolve, 10))
    controller.abort()
    await expect(done).rejects.toThrow()
    await closed
  })

  it('rejects when the socket is not there', async () => {
    await expect(
      unixSocketApi(path.join(dir, 'absent.sock')).pull(
        request,
        () => undefined,
        new AbortController().signal
      )
    ).rejects.toThrow(/ENOENT/)
  })
})

describe('connectDockerApi', () => {
  it("uses the CLI's endpoint when it is a unix socket, else reports it", async () => {
    const at = (endpoint: string) =>
      connectDockerApi(scriptedDocker({ context: [result(0, `${endpoint}\n`)] }).run)
    expect(await at('unix:///run/user/1000/docker.sock')).toMatchObject({
      endpoint: 'unix:///run/user/1000/docker.sock',
      api: expect.anything()
    })
    expect(await at('tcp://build-host:2375')).toEqual({ endpoint: 'tcp://build-host:2375' })
    const failing = scriptedDocker({
      context: [result(1, '', 'context "gone": context not found\n')]
    })
    expect(await connectDockerApi(failing.run)).toEqual({
      endpoint: 'unknown (docker context inspect: context "gone": context not found)'
    })
    expect(failing.calls).toEqual([
      ['context', 'inspect', '--format', '{{.Endpoints.docker.Host}}']
    ])
  })
})
