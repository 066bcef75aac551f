import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { envBytes, envFlag, envMilliseconds } from './env-settings.js'
import { invalid, unverifiable, VerifyError } from './errors.js'
import { clip } from './text/sanitize.js'
import { throughputWindowMs, watchThroughput } from './throughput.js'

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
  /** The whole download, retries included (default VERIFY_MODEL_DOWNLOAD_TIMEOUT_MS or 6 h). */
  deadlineMs?: number
  /**
   * The least a body may deliver per second, measured over windows (throughputWindowMs);
   * default VERIFY_MODEL_MIN_DOWNLOAD_RATE or 16 KiB/s.
   */
  minBytesPerSecond?: number
  /** Plain http to a loopback host, for test servers (default VERIFY_MODEL_ALLOW_LOOPBACK_HTTP). */
  allowLoopbackHttp?: boolean
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
type Settings = typeof DEFAULTS & {
  deadlineMs: number
  minBytesPerSecond: number
  allowLoopbackHttp: boolean
}

const DEADLINE_VARIABLE = 'VERIFY_MODEL_DOWNLOAD_TIMEOUT_MS'
const RATE_VARIABLE = 'VERIFY_MODEL_MIN_DOWNLOAD_RATE'
const LOOPBACK_VARIABLE = 'VERIFY_MODEL_ALLOW_LOOPBACK_HTTP'

/** The environment's download settings, under whatever the caller gives. */
function settingsOf(options: DownloadOptions): Settings {
  const env = process.env
  return {
    ...DEFAULTS,
    deadlineMs: envMilliseconds(env, DEADLINE_VARIABLE, 6 * 3600_000),
    minBytesPerSecond: envBytes(env, RATE_VARIABLE, 16 * 1024),
    allowLoopbackHttp: envFlag(env, LOOPBACK_VARIABLE),
    ...definedOnly(options)
  }
}

const MAX_REDIRECTS = 10
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

/**
 * Hosts that are this machine: localhost names, 127.0.0.0/8, ::1, their IPv4-mapped forms and
 * the unspecified addresses (which connect locally). The URL parser has normalised IPv4 spellings.
 */
function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase()
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    /^127\.\d+\.\d+\.\d+$/.test(host) ||
    host === '0.0.0.0' ||
    host === '[::1]' ||
    host === '[::]' ||
    /^\[::ffff:(127\.|7f[0-9a-f]{2}:)/.test(host)
  )
}

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
  const settings = settingsOf(options)
  const shown = checkUrl(url, 'url', settings)
  await mkdir(path.dirname(dest), { recursive: true })
  const partial = `${dest}.partial-${randomBytes(6).toString('hex')}`
  const clock = { started: Date.now(), deadline: Date.now() + settings.deadlineMs }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await attemptDownload(url, partial, settings, clock)
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
        const wait = error.retryAfterMs ?? settings.backoffMs * 2 ** attempt
        if (Date.now() + wait >= clock.deadline)
          throw unverifiable(
            `download ${shown}: ${error.message}; no time left for another attempt within the total deadline of ${seconds(settings.deadlineMs)} s (${DEADLINE_VARIABLE})`
          )
        await settings.sleep(wait)
      }
    }
  } finally {
    await rm(partial, { force: true })
  }
}

/**
 * Validates a url (https, or http to loopback with the test setting) and returns it without
 * query or credentials, for messages.
 */
function checkUrl(
  url: string,
  role: string,
  settings: Pick<Settings, 'allowLoopbackHttp'>
): string {
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
  if (parsed.protocol === 'https:') return shown
  if (parsed.protocol === 'http:' && isLoopback(parsed.hostname)) {
    if (settings.allowLoopbackHttp) return shown
    throw invalid(
      `download ${shown}: only https URLs are fetched (plain http to loopback only with ${LOOPBACK_VARIABLE}=true, for test servers)`,
      undefined,
      { code: 'DOWNLOAD_URL' }
    )
  }
  throw invalid(
    `download ${shown}: only https URLs are fetched (got ${parsed.protocol.replace(/:$/, '')})`
  )
}

async function attemptDownload(
  url: string,
  partial: string,
  settings: Settings,
  clock: { started: number; deadline: number }
): Promise<DownloadResult> {
  const controller = new AbortController()
  let failure: VerifyError | RetryableFailure | undefined
  const fail = (error: VerifyError | RetryableFailure) => {
    failure ??= error
    controller.abort()
  }
  let bytesDone = 0
  let declared: number | undefined
  let shown = checkUrl(url, 'url', settings)
  let idle: NodeJS.Timeout | undefined
  const rearm = () => {
    clearTimeout(idle)
    idle = setTimeout(
      () => fail(new RetryableFailure(`no data for ${settings.timeoutMs} ms`)),
      settings.timeoutMs
    )
  }
  const overall = setTimeout(
    () =>
      fail(
        unverifiable(
          `download ${shown}: not finished within the total deadline of ${seconds(settings.deadlineMs)} s (${DEADLINE_VARIABLE}): ${bytesDone} bytes${declared === undefined ? '' : ` of ${declared}`} in ${seconds(Date.now() - clock.started, 1)} s`
        )
      ),
    Math.max(0, clock.deadline - Date.now())
  )
  let stopWatchingRate = () => {}
  const watchRate = () => {
    stopWatchingRate = watchThroughput({
      windowMs: throughputWindowMs(settings.deadlineMs),
      minBytesPerSecond: settings.minBytesPerSecond,
      variable: RATE_VARIABLE,
      bytesSoFar: () => bytesDone,
      onTooSlow: reason => fail(unverifiable(`download ${shown}: ${reason}`))
    })
  }
  rearm()
  try {
    const response = await fetchFollowingRedirects(url, controller.signal, settings)
    shown = checkUrl(response.url || url, 'url', settings)
    if (response.status !== 200) {
      await response.body?.cancel()
      throw statusFailure(response, shown, settings.maxRetryAfterMs)
    }
    // fetch would decode any other encoding: a few KB on the wire could become terabytes.
    const encoding = response.headers.get('content-encoding')?.trim().toLowerCase()
    if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
      await response.body?.cancel()
      throw unverifiable(
        `download ${shown}: the server sent content-encoding '${clip(encoding)}' although only identity was accepted`
      )
    }
    declared = declaredLength(response)
    if (declared !== undefined && declared > settings.maxBytes) {
      await response.body?.cancel()
      throw unverifiable(
        `download ${shown}: ${declared} bytes exceed the size cap of ${settings.maxBytes} bytes`,
        undefined,
        { code: 'DOWNLOAD_FAILED' }
      )
    }
    watchRate()
    const { bytes, sha256 } = await writeBody(response, partial, {
      maxBytes: settings.maxBytes,
      shown,
      onChunk: done => {
        bytesDone = done
        rearm()
        settings.onProgress({ bytesDone: done, bytesTotal: declared })
      }
    })
    if (declared !== undefined && bytes !== declared) {
      throw new RetryableFailure(`body ended after ${bytes} of ${declared} bytes`)
    }
    return { bytes, sha256 }
  } catch (error) {
    if (failure !== undefined) throw failure
    if (error instanceof VerifyError || error instanceof RetryableFailure) throw error
    throw new RetryableFailure(networkReason(error))
  } finally {
    clearTimeout(idle)
    clearTimeout(overall)
    stopWatchingRate()
  }
}

/** Seconds for a message: whole when they are, else with `digits` decimals. */
function seconds(ms: number, digits = 0): string {
  return digits === 0 && ms % 1000 === 0
    ? String(ms / 1000)
    : (ms / 1000).toFixed(Math.max(1, digits))
}

async function fetchFollowingRedirects(
  url: string,
  signal: AbortSignal,
  settings: Settings
): Promise<Response> {
  let current = url
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const response = await settings.fetchImpl(current, {
      redirect: 'manual',
      signal,
      headers: { 'accept-encoding': 'identity' }
    })
    const location = response.headers.get('location')
    if (!REDIRECT_STATUSES.has(response.status) || location === null) return response
    await response.body?.cancel()
    const next = new URL(location, current)
    const from = new URL(current)
    // A public host must not make the verifier fetch from this machine or without TLS (and then
    // report the local answer's size and digest in a mismatch).
    if (!isLoopback(from.hostname) && (isLoopback(next.hostname) || next.protocol !== 'https:'))
      throw invalid(
        `download ${checkUrl(url, 'url', settings)}: refusing the redirect to ${next.origin}${next.pathname}: a redirect from a non-loopback https origin may not lead to loopback or plain http`
      )
    checkUrl(next.href, `redirect from ${checkUrl(current, 'url', settings)} to`, settings)
    current = next.href
  }
  throw unverifiable(
    `download ${checkUrl(url, 'url', settings)}: more than ${MAX_REDIRECTS} redirects`,
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

/** Content-Length (the body is identity-encoded: anything else was refused). */
function declaredLength(response: Response): number | undefined {
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
