import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { download, type DownloadOptions } from '../src/download.js'
import { VerifyError } from '../src/errors.js'
import {
  chunked,
  drip,
  hang,
  ok,
  redirect,
  reset,
  startServer,
  status,
  truncate,
  type TestServer
} from './helpers/http-server.js'

const body = randomBytes(256 * 1024)
const bodySha256 = createHash('sha256').update(body).digest('hex')

let server: TestServer
let dir: string
let sleeps: number[]

/** Small timeouts and a recorded, instant sleep keep the suite fast and let it assert the backoff. */
function fast(extra: DownloadOptions = {}): DownloadOptions {
  return {
    timeoutMs: 300,
    retries: 2,
    sleep: async ms => {
      sleeps.push(ms)
    },
    ...extra
  }
}

async function expectFailure(promise: Promise<unknown>, verdict: string, text: RegExp) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e
  )
  expect(error).toBeInstanceOf(VerifyError)
  expect((error as VerifyError).verdict).toBe(verdict)
  expect((error as VerifyError).message).toMatch(text)
}

beforeAll(async () => {
  server = await startServer()
})
afterAll(async () => {
  await server.close()
})
beforeEach(async () => {
  sleeps = []
  dir = await mkdtemp(path.join(os.tmpdir(), 'download-test-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('download', () => {
  it('writes the body and returns its size and sha256', async () => {
    server.route('/ok', ok(body))
    const progress: number[] = []
    const dest = path.join(dir, 'sub', 'file.bin')
    const result = await download(
      `${server.url}/ok`,
      dest,
      fast({ onProgress: p => progress.push(p.bytesDone) })
    )
    expect(result).toEqual({ bytes: body.length, sha256: bodySha256 })
    expect((await readFile(dest)).equals(body)).toBe(true)
    expect(progress.at(-1)).toBe(body.length)
    expect(await readdir(path.dirname(dest))).toEqual(['file.bin'])
  })

  it('retries two 503 answers with exponential backoff, then succeeds on the third request', async () => {
    server.route('/flaky', status(503), status(503), ok(body))
    const result = await download(
      `${server.url}/flaky`,
      path.join(dir, 'f'),
      fast({ backoffMs: 10 })
    )
    expect(result.sha256).toBe(bodySha256)
    expect(server.requests('/flaky')).toBe(3)
    expect(sleeps).toEqual([10, 20])
  })

  it('honours Retry-After up to its cap', async () => {
    server.route(
      '/busy',
      status(429, { 'retry-after': '7' }),
      status(503, { 'retry-after': '999' }),
      ok(body)
    )
    await download(`${server.url}/busy`, path.join(dir, 'f'), fast({ maxRetryAfterMs: 30_000 }))
    expect(sleeps).toEqual([7_000, 30_000])
  })

  it('retries a connection reset mid-body and keeps only the complete file', async () => {
    server.route('/reset', reset(body), ok(body))
    const dest = path.join(dir, 'r')
    const result = await download(`${server.url}/reset`, dest, fast())
    expect(result.sha256).toBe(bodySha256)
    expect(server.requests('/reset')).toBe(2)
    expect((await readFile(dest)).equals(body)).toBe(true)
  })

  it('never accepts a truncated body with a correct Content-Length as whole, and leaves no file', async () => {
    server.route('/short', truncate(body))
    const dest = path.join(dir, 't')
    await expectFailure(
      download(`${server.url}/short`, dest, fast()),
      'unverifiable',
      /\/short: .*gave up after 3 attempts/
    )
    expect(server.requests('/short')).toBe(3)
    expect(await readdir(dir)).toEqual([])
  })

  it('checks the byte count itself, even when the transport reports a short body as complete', async () => {
    let calls = 0
    const fetchImpl = (async () => {
      calls++
      return new Response(body.subarray(0, 1000), {
        status: 200,
        headers: { 'content-length': String(body.length) }
      })
    }) as typeof fetch
    await expectFailure(
      download('https://example.org/m.bin', path.join(dir, 'm'), fast({ fetchImpl, retries: 1 })),
      'unverifiable',
      new RegExp(`body ended after 1000 of ${body.length} bytes \\(gave up after 2 attempts\\)`)
    )
    expect(calls).toBe(2)
    expect(await readdir(dir)).toEqual([])
  })

  it('times out a server that never answers, within the bound', async () => {
    server.route('/hang', hang())
    const started = Date.now()
    await expectFailure(
      download(`${server.url}/hang`, path.join(dir, 'h'), fast({ timeoutMs: 200, retries: 1 })),
      'unverifiable',
      /no data for 200 ms.*2 attempts/
    )
    const elapsed = Date.now() - started
    expect(elapsed).toBeGreaterThanOrEqual(400)
    expect(elapsed).toBeLessThan(3_000)
    expect(await readdir(dir)).toEqual([])
  })

  it('times out a body that stalls, but not one that keeps arriving slowly', async () => {
    const small = body.subarray(0, 4096)
    server.route('/drip', drip(small, 512, 50))
    const result = await download(
      `${server.url}/drip`,
      path.join(dir, 'd'),
      fast({ timeoutMs: 300 })
    )
    expect(result.bytes).toBe(small.length)

    server.route('/stall', drip(small, 512, 1_000))
    await expectFailure(
      download(`${server.url}/stall`, path.join(dir, 's'), fast({ timeoutMs: 200, retries: 0 })),
      'unverifiable',
      /no data for 200 ms/
    )
  })

  it('fails at once on a 404, without retrying', async () => {
    await expectFailure(
      download(`${server.url}/missing`, path.join(dir, 'm'), fast()),
      'unverifiable',
      /\/missing: HTTP 404/
    )
    expect(server.requests('/missing')).toBe(1)
    expect(sleeps).toEqual([])
  })

  it('refuses a declared size above the cap before reading the body', async () => {
    server.route('/big', ok(body))
    await expectFailure(
      download(`${server.url}/big`, path.join(dir, 'b'), fast({ maxBytes: 1000 })),
      'unverifiable',
      new RegExp(`${body.length} bytes exceed the size cap of 1000 bytes`)
    )
    expect(server.requests('/big')).toBe(1)
    expect(await readdir(dir)).toEqual([])
  })

  it('aborts a body without Content-Length once it passes the cap', async () => {
    server.route('/chunked', chunked(body))
    await expectFailure(
      download(`${server.url}/chunked`, path.join(dir, 'c'), fast({ maxBytes: 1000 })),
      'unverifiable',
      /body exceeds the size cap of 1000 bytes/
    )
    expect(await readdir(dir)).toEqual([])
  })

  it('follows redirects, checking every hop', async () => {
    server.route('/moved', redirect('/ok'))
    server.route('/ok', ok(body))
    expect((await download(`${server.url}/moved`, path.join(dir, 'x'), fast())).sha256).toBe(
      bodySha256
    )

    server.route('/away', redirect('http://example.com/data.tar'))
    await expectFailure(
      download(`${server.url}/away`, path.join(dir, 'y'), fast()),
      'invalid',
      /only https URLs are fetched/
    )

    server.route('/loop', redirect('/loop'))
    await expectFailure(
      download(`${server.url}/loop`, path.join(dir, 'z'), fast()),
      'unverifiable',
      /more than 10 redirects/
    )
  })

  it('accepts https, and plain http only from loopback; never credentials', async () => {
    const requested: string[] = []
    const fetchImpl = (async (input: string | URL | Request) => {
      requested.push(String(input))
      return new Response(body, { status: 200 })
    }) as typeof fetch
    const result = await download(
      'https://example.org/m.bin',
      path.join(dir, 'm'),
      fast({ fetchImpl })
    )
    expect(result.sha256).toBe(bodySha256)
    expect(requested).toEqual(['https://example.org/m.bin'])

    for (const [url, text] of [
      ['http://example.org/m.bin', /only https URLs are fetched \(got http\)/],
      ['ftp://example.org/m.bin', /only https URLs are fetched \(got ftp\)/],
      ['file:///etc/passwd', /only https URLs are fetched \(got file\)/],
      ['https://user:secret@example.org/m.bin', /credentials in the URL/],
      ['not a url', /is not a valid URL/]
    ] as const) {
      await expectFailure(download(url, path.join(dir, 'n'), fast({ fetchImpl })), 'invalid', text)
    }
    expect(requested).toHaveLength(1)
  })

  it('keeps query strings (signed tokens) out of its messages', async () => {
    await expectFailure(
      download(`${server.url}/missing?token=s3cr3t`, path.join(dir, 'q'), fast()),
      'unverifiable',
      /^download http:\/\/127\.0\.0\.1:\d+\/missing: HTTP 404 Not Found$/
    )
  })
})
