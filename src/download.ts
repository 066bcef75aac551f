import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { invalid, unverifiable, VerifyError } from './errors.js'

export interface DownloadProgress {
  bytesDone: number
  /** From Content-Length, when the server sent one. */
  bytesTotal?: number
}

export interface DownloadOptions {
  /** Largest body accepted, in bytes. */
  maxBytes?: number
  /** Attempts after the first, for failures that may pass: network errors, 408, 429, 5xx, truncation. */
  retries?: number
  /** Longest silence accepted: until the response headers, then between two chunks of the body. */
  timeoutMs?: number
  /** Wait before the first retry; doubles at each further one. */
  backoffMs?: number
  /** Longest `Retry-After` honoured. */
  maxRetryAfterMs?: number
  fetchImpl?: typeof fetch
  sleep?: (ms: number) => Promise<void>
  onProgress?: (progress: DownloadProgress) => void
}

export interface DownloadResult {
  bytes: number
  /** Lowercase hex SHA-256 of the bytes written to `dest`. */
  sha256: string
}

export type DownloadFn = typeof download

const DEFAULTS = {
  maxBytes: 256 * 2 ** 30,
  retries: 4,
  timeoutMs: 60_000,
  backoffMs: 1_000,
  maxRetryAfterMs: 60_000,
  fetchImpl: (...args: Parameters<typeof fetch>) => fetch(...args),
  sleep: (ms: number) => delay(ms),
  onProgress: (_progress: DownloadProgress) => {}
}
type Settings = typeof DEFAULTS

const MAX_REDIRECTS = 10
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]'])

/** A failure that another attempt may not repeat. */
class RetryableFailure extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number
  ) {
    super(message)
  }
}

/**
 * Downloads `url` to `dest`. The body goes to a temporary file beside `dest`, renamed into place
 * only once complete: when Content-Length is given the byte count must equal it, so a truncated
 * body is never taken as whole. Only https is fetched (plain http only from loopback, for tests);
 * redirects are followed by hand so each hop obeys the same rule. Failures that may pass are
 * retried with exponential backoff (honouring Retry-After up to a cap); others fail at once.
 * No resume (Range): each attempt starts over. Throws `unverifiable` when the file cannot be
 * obtained, `invalid` when the url itself is not acceptable.
 */
export async function download(
  url: string,
  dest: string,
  options: DownloadOptions = {}
): Promise<DownloadResult> {
  const settings: Settings = { ...DEFAULTS, ...definedOnly(options) }
  const shown = checkUrl(url, 'url')
  await mkdir(path.dirname(dest), { recursive: true })
  const partial = `${dest}.partial-${randomBytes(6).toString('hex')}`
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await attemptDownload(url, partial, settings)
        await rename(partial, dest)
        return result
      } catch (error) {
        if (!(error instanceof RetryableFailure)) throw error
        if (attempt >= settings.retries) {
          throw unverifiable(
            `download ${shown}: ${error.message} (gave up after ${attempt + 1} attempts)`,
            undefined,
            { code: 'DOWNLOAD_FAILED' }
          )
        }
        await settings.sleep(error.retryAfterMs ?? settings.backoffMs * 2 ** attempt)
      }
    }
  } finally {
    await rm(partial, { force: true })
  }
}

/** Validates a url (https, or http to loopback) and returns it without query or credentials, for messages. */
function checkUrl(url: string, role: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw invalid(`download ${role} '${url}' is not a valid URL`, undefined, {
      code: 'DOWNLOAD_URL'
    })
  }
  const shown = `${parsed.origin}${parsed.pathname}`
  if (parsed.username || parsed.password) {
    throw invalid(`download ${shown}: credentials in the URL are not accepted`, undefined, {
      code: 'DOWNLOAD_URL'
    })
  }
  const loopbackHttp = parsed.protocol === 'http:' && LOOPBACK_HOSTS.has(parsed.hostname)
  if (parsed.protocol !== 'https:' && !loopbackHttp) {
    throw invalid(
      `download ${shown}: only https URLs are fetched (got ${parsed.protocol.replace(/:$/, '')})`,
      undefined,
      { code: 'DOWNLOAD_URL' }
    )
  }
  return shown
}

async function attemptDownload(
  url: string,
  partial: string,
  settings: Settings
): Promise<DownloadResult> {
  const controller = new AbortController()
  let stalled = false
  let timer: NodeJS.Timeout | undefined
  const rearm = () => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      stalled = true
      controller.abort()
    }, settings.timeoutMs)
  }
  rearm()
  try {
    const response = await fetchFollowingRedirects(url, controller.signal, settings.fetchImpl)
    const shown = checkUrl(response.url || url, 'url')
    if (response.status !== 200) {
      await response.body?.cancel()
      throw statusFailure(response, shown, settings.maxRetryAfterMs)
    }
    const declared = declaredLength(response)
    if (declared !== undefined && declared > settings.maxBytes) {
      await response.body?.cancel()
      throw unverifiable(
        `download ${shown}: ${declared} bytes exceed the size cap of ${settings.maxBytes} bytes`,
        undefined,
        { code: 'DOWNLOAD_FAILED' }
      )
    }
    const { bytes, sha256 } = await writeBody(response, partial, {
      maxBytes: settings.maxBytes,
      shown,
      onChunk: bytesDone => {
        rearm()
        settings.onProgress({ bytesDone, bytesTotal: declared })
      }
    })
    if (declared !== undefined && bytes !== declared) {
      throw new RetryableFailure(`body ended after ${bytes} of ${declared} bytes`)
    }
    return { bytes, sha256 }
  } catch (error) {
    if (error instanceof VerifyError || error instanceof RetryableFailure) throw error
    if (stalled) throw new RetryableFailure(`no data for ${settings.timeoutMs} ms`)
    throw new RetryableFailure(networkReason(error))
  } finally {
    clearTimeout(timer)
  }
}

async function fetchFollowingRedirects(
  url: string,
  signal: AbortSignal,
  fetchImpl: typeof fetch
): Promise<Response> {
  let current = url
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const response = await fetchImpl(current, {
      redirect: 'manual',
      signal,
      // A content-encoded body would be decoded by fetch and no longer match Content-Length.
      headers: { 'accept-encoding': 'identity' }
    })
    const location = response.headers.get('location')
    if (!REDIRECT_STATUSES.has(response.status) || location === null) return response
    await response.body?.cancel()
    const next = new URL(location, current).href
    checkUrl(next, `redirect from ${checkUrl(current, 'url')} to`)
    current = next
  }
  throw unverifiable(
    `download ${checkUrl(url, 'url')}: more than ${MAX_REDIRECTS} redirects`,
    undefined,
    { code: 'DOWNLOAD_FAILED' }
  )
}

function statusFailure(response: Response, shown: string, maxRetryAfterMs: number): Error {
  const status = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`
  if (response.status === 408 || response.status === 429 || response.status >= 500) {
    const retryAfter = retryAfterMs(response.headers.get('retry-after'))
    return new RetryableFailure(
      status,
      retryAfter === undefined ? undefined : Math.min(retryAfter, maxRetryAfterMs)
    )
  }
  return unverifiable(`download ${shown}: ${status}`, undefined, { code: 'DOWNLOAD_FAILED' })
}

/** Retry-After as delay-seconds or an HTTP-date. */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000
  const date = Date.parse(header)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

/**
 * Content-Length, when it counts the bytes we will read. A server that ignores
 * `accept-encoding: identity` has its body decoded by fetch, so its length says nothing then.
 */
function declaredLength(response: Response): number | undefined {
  const encoding = response.headers.get('content-encoding')
  if (encoding !== null && encoding.trim().toLowerCase() !== 'identity') return undefined
  const header = response.headers.get('content-length')
  return header !== null && /^\d+$/.test(header.trim()) ? Number(header.trim()) : undefined
}

async function writeBody(
  response: Response,
  partial: string,
  limits: { maxBytes: number; shown: string; onChunk: (bytesDone: number) => void }
): Promise<DownloadResult> {
  await rm(partial, { force: true })
  const file = await open(partial, 'wx', 0o644)
  const hash = createHash('sha256')
  let bytes = 0
  try {
    if (response.body) {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        bytes += chunk.byteLength
        if (bytes > limits.maxBytes) {
          throw unverifiable(
            `download ${limits.shown}: body exceeds the size cap of ${limits.maxBytes} bytes`,
            undefined,
            { code: 'DOWNLOAD_FAILED' }
          )
        }
        hash.update(chunk)
        await file.write(chunk)
        limits.onChunk(bytes)
      }
    }
  } finally {
    await file.close()
  }
  return { bytes, sha256: hash.digest('hex') }
}

function networkReason(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const cause = error.cause as { code?: string; message?: string } | undefined
  const detail = cause?.code ?? cause?.message
  return detail ? `${error.message} (${detail})` : error.message
}

function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined)
  ) as Partial<T>
}
