import http from 'node:http'
import type { Run } from '../exec.js'
import { lastLine } from './docker.js'

// The daemon's Engine API, for the one thing the docker CLI hides without a terminal: the
// byte counts of a pull, which its minimum throughput is measured on.

/** One message of the daemon's pull stream (POST /images/create). */
export interface PullMessage {
  id?: string
  status?: string
  progressDetail?: { current?: number; total?: number }
  error?: string
  errorDetail?: { message?: string }
}

export interface ApiPullRequest {
  /** The repository, without the digest (the API's `fromImage`). */
  repository: string
  /** `sha256:<hex>` (the API's `tag`). */
  digest: string
  platform: string
  /** The X-Registry-Auth header, when the registry has credentials. */
  registryAuth?: string
}

export interface DockerApi {
  /**
   * Pulls, handing each message to `onMessage`; resolves when the daemon ends the stream and
   * rejects with the daemon's message when it refuses or reports an error. Aborting `signal`
   * closes the connection, which makes the daemon stop the pull.
   */
  pull(
    request: ApiPullRequest,
    onMessage: (message: PullMessage) => void,
    signal: AbortSignal
  ): Promise<void>
}

/**
 * The API of the daemon the docker CLI talks to (DOCKER_HOST, DOCKER_CONTEXT or the current
 * context), when that is a unix socket; otherwise undefined with the endpoint, for the message.
 */
export async function connectDockerApi(run: Run): Promise<{ api?: DockerApi; endpoint: string }> {
  const result = await run('docker', [
    'context',
    'inspect',
    '--format',
    '{{.Endpoints.docker.Host}}'
  ])
  if (result.exitCode !== 0)
    return { endpoint: `unknown (docker context inspect: ${lastLine(result.stderr)})` }
  const endpoint = result.stdout.trim()
  return endpoint.startsWith('unix://')
    ? { api: unixSocketApi(endpoint.slice('unix://'.length)), endpoint }
    : { endpoint }
}

/** The longest line the stream may send: a message is a few hundred bytes. */
const MAX_LINE_BYTES = 2 ** 20

export function unixSocketApi(socketPath: string): DockerApi {
  return {
    pull: (request, onMessage, signal) =>
      new Promise<void>((resolve, reject) => {
        const query = new URLSearchParams({
          fromImage: request.repository,
          tag: request.digest,
          platform: request.platform
        })
        const req = http.request({
          socketPath,
          method: 'POST',
          path: `/images/create?${query}`,
          headers: request.registryAuth ? { 'X-Registry-Auth': request.registryAuth } : {},
          signal
        })
        req.on('error', reject)
        signal.addEventListener('abort', () => reject(signal.reason), { once: true })
        req.on('response', response => {
          let pending = ''
          let failure: string | undefined
          const take = (line: string) => {
            if (line.trim() === '') return
            let message: PullMessage
            try {
              message = JSON.parse(line)
            } catch {
              failure ??= `the daemon sent '${line.slice(0, 200)}' instead of a JSON message`
              return
            }
            if (response.statusCode !== 200)
              failure ??= (message as { message?: string }).message ?? line
            else if (message.error !== undefined)
              failure ??= message.errorDetail?.message ?? message.error
            else onMessage(message)
          }
          response.setEncoding('utf8')
          response.on('data', (chunk: string) => {
            const lines = (pending + chunk).split('\n')
            pending = lines.pop() ?? ''
            lines.forEach(take)
            if (pending.length > MAX_LINE_BYTES) response.destroy(new Error('a line of over 1 MiB'))
          })
          response.on('error', reject)
          response.on('end', () => {
            take(pending)
            if (failure === undefined && response.statusCode !== 200)
              failure = `HTTP ${response.statusCode}`
            if (failure === undefined) resolve()
            else reject(new Error(failure))
          })
        })
        req.end()
      })
  }
}
