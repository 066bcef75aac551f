import http from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * What the server does with one request. A path is given a sequence of behaviours: request n
 * gets the n-th one, and the last one repeats (so `[status(503), status(503), ok(body)]` fails
 * twice, then serves).
 */
export type Behaviour =
  | { kind: 'ok'; body: Buffer; headers?: http.OutgoingHttpHeaders }
  /** No Content-Length: chunked transfer encoding, in two chunks. */
  | { kind: 'chunked'; body: Buffer }
  | { kind: 'status'; status: number; headers?: http.OutgoingHttpHeaders }
  | { kind: 'redirect'; location: string; status: number }
  /** Correct Content-Length, half the body, then a TCP reset. */
  | { kind: 'reset'; body: Buffer }
  /** Correct Content-Length, half the body, then a clean close. */
  | { kind: 'truncate'; body: Buffer }
  /** Accepts the request and never answers. */
  | { kind: 'hang' }
  /** The whole body, `chunkBytes` every `intervalMs`. */
  | { kind: 'drip'; body: Buffer; chunkBytes: number; intervalMs: number }

export const ok = (body: Buffer, headers?: http.OutgoingHttpHeaders): Behaviour => ({
  kind: 'ok',
  body,
  headers
})
export const chunked = (body: Buffer): Behaviour => ({ kind: 'chunked', body })
export const status = (code: number, headers?: http.OutgoingHttpHeaders): Behaviour => ({
  kind: 'status',
  status: code,
  headers
})
export const redirect = (location: string, code = 302): Behaviour => ({
  kind: 'redirect',
  location,
  status: code
})
export const reset = (body: Buffer): Behaviour => ({ kind: 'reset', body })
export const truncate = (body: Buffer): Behaviour => ({ kind: 'truncate', body })
export const hang = (): Behaviour => ({ kind: 'hang' })
export const drip = (body: Buffer, chunkBytes: number, intervalMs: number): Behaviour => ({
  kind: 'drip',
  body,
  chunkBytes,
  intervalMs
})

export interface TestServer {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string
  /** Sets (or replaces) what a path does; its request count restarts at 0. */
  route(path: string, ...behaviours: Behaviour[]): void
  /** How many requests a path has received. */
  requests(path: string): number
  /** Ends every connection (hanging or dripping ones too) and stops listening. */
  close(): Promise<void>
}

/** A real HTTP server on 127.0.0.1 with programmable faults, for download tests. */
export async function startServer(routes: Record<string, Behaviour[]> = {}): Promise<TestServer> {
  // In-process downloads from this server (plain http on loopback) need the explicit setting.
  process.env.VERIFY_MODEL_ALLOW_LOOPBACK_HTTP = 'true'
  const table = new Map<string, Behaviour[]>(Object.entries(routes))
  const counts = new Map<string, number>()
  const timers = new Set<NodeJS.Timeout>()

  const server = http.createServer((req, res) => {
    const requestPath = new URL(req.url ?? '/', 'http://127.0.0.1').pathname
    const seen = counts.get(requestPath) ?? 0
    counts.set(requestPath, seen + 1)
    const behaviours = table.get(requestPath)
    if (!behaviours || behaviours.length === 0) {
      res.writeHead(404).end('not found')
      return
    }
    respond(behaviours[Math.min(seen, behaviours.length - 1)], res)
  })

  function respond(behaviour: Behaviour, res: http.ServerResponse): void {
    switch (behaviour.kind) {
      case 'ok':
        res.writeHead(200, { 'content-length': behaviour.body.length, ...behaviour.headers })
        res.end(behaviour.body)
        return
      case 'chunked': {
        res.writeHead(200)
        const middle = Math.floor(behaviour.body.length / 2)
        res.write(behaviour.body.subarray(0, middle))
        res.end(behaviour.body.subarray(middle))
        return
      }
      case 'status':
        res.writeHead(behaviour.status, behaviour.headers).end()
        return
      case 'redirect':
        res.writeHead(behaviour.status, { location: behaviour.location }).end()
        return
      case 'reset':
      case 'truncate': {
        res.writeHead(200, { 'content-length': behaviour.body.length })
        const half = behaviour.body.subarray(0, Math.floor(behaviour.body.length / 2))
        res.write(half, () => {
          if (behaviour.kind === 'reset') res.socket?.resetAndDestroy()
          else res.socket?.end()
        })
        return
      }
      case 'hang':
        return
      case 'drip': {
        res.writeHead(200, { 'content-length': behaviour.body.length })
        let offset = 0
        const timer = setInterval(() => {
          const chunk = behaviour.body.subarray(offset, offset + behaviour.chunkBytes)
          offset += chunk.length
          if (offset >= behaviour.body.length) {
            clearInterval(timer)
            timers.delete(timer)
            res.end(chunk)
          } else {
            res.write(chunk)
          }
        }, behaviour.intervalMs)
        timers.add(timer)
        return
      }
    }
  }

  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    route(path, ...behaviours) {
      table.set(path, behaviours)
      counts.delete(path)
    },
    requests: path => counts.get(path) ?? 0,
    close: async () => {
      for (const timer of timers) clearInterval(timer)
      timers.clear()
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}
