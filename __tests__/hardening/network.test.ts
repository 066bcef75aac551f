// Issue 13 items 6–8 through the bundled action: slow-drip servers and a registry that never
// answers meet a total deadline and a minimum throughput; a content-encoded body is refused; a
// redirect from a public https origin to loopback or plain http is never followed; plain http to
// loopback needs the explicit test setting.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { brotliCompressSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { runBundledAction } from '../helpers/action-runner.js'
import { buildBusyboxImage, describeDocker } from '../helpers/docker.js'
import { drip, ok, startServer, type TestServer } from '../helpers/http-server.js'
import { imageLayer, startTestRegistry } from '../helpers/registry.js'
import { publicKey, signedLedger } from './ledgers.js'
import { escapeRegExp } from '../helpers/regexp.js'

const CAPABILITY = `ocap1:${'0'.repeat(64)}`
const LOOPBACK = { VERIFY_MODEL_ALLOW_LOOPBACK_HTTP: 'true' }

describe('downloads through the bundled action', () => {
  let dir: string
  let server: TestServer
  let sba: string
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verify-model-network-'))
    server = await startServer()
    // Check mode never builds: the ledger only has to verify.
    sba = signedLedger(
      dir,
      {
        uri: 'oci://127.0.0.1:5000/verify-model-test/busybox',
        sha256: 'a'.repeat(64),
        repository: '127.0.0.1:5000/verify-model-test/busybox',
        reference: `127.0.0.1:5000/verify-model-test/busybox@sha256:${'a'.repeat(64)}`,
        platform: 'linux/amd64'
      },
      { outputs: ['model.bin'] }
    ).sba
  })
  afterAll(async () => {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const check = (url: string, env: Record<string, string> = LOOPBACK, timeoutMs = 30_000) =>
    runBundledAction(
      {
        attestation: sba,
        'public-key': publicKey,
        mode: 'check',
        'model-url': `model.bin=${url}`,
        'expected-capability': CAPABILITY
      },
      { baseDir: dir, env, timeoutMs }
    )

  it('item 6: a slow drip meets the total deadline, with the numbers', async () => {
    // One byte every 500 ms keeps any idle timer alive.
    server.route('/drip.bin', drip(Buffer.alloc(1000, 1), 1, 500))
    const run = await check(`${server.url}/drip.bin`, {
      ...LOOPBACK,
      VERIFY_MODEL_DOWNLOAD_TIMEOUT_MS: '3000',
      VERIFY_MODEL_MIN_DOWNLOAD_RATE: '1'
    })
    expect(run.outputs.result).toBe('unverifiable')
    expect(run.report?.reason).toMatch(
      /^download http:\/\/127\.0\.0\.1:\d+\/drip\.bin: not finished within the total deadline of 3 s \(VERIFY_MODEL_DOWNLOAD_TIMEOUT_MS\): \d bytes of 1000 in 3\.\d s$/
    )
    expect(run.durationMs).toBeLessThan(15_000)
  }, 60_000)

  it('item 6: a slow drip below the minimum throughput fails, with the numbers', async () => {
    server.route('/slow.bin', drip(Buffer.alloc(100_000, 1), 10, 100))
    const run = await check(`${server.url}/slow.bin`, {
      ...LOOPBACK,
      VERIFY_MODEL_DOWNLOAD_TIMEOUT_MS: '8000',
      VERIFY_MODEL_MIN_DOWNLOAD_RATE: '1k'
    })
    expect(run.outputs.result).toBe('unverifiable')
    expect(run.report?.reason).toMatch(
      /^download http:\/\/127\.0\.0\.1:\d+\/slow\.bin: \d+ bytes in the last 2\.0 s \(\d+ B\/s\), below the minimum of 1024 B\/s \(VERIFY_MODEL_MIN_DOWNLOAD_RATE\)$/
    )
  }, 60_000)

  it('item 7: a content-encoded body is refused before it is decoded', async () => {
    const bomb = brotliCompressSync(Buffer.alloc(64 * 2 ** 20))
    server.route('/bomb.bin', ok(bomb, { 'content-encoding': 'br' }))
    const run = await check(`${server.url}/bomb.bin`)
    expect({ result: run.outputs.result, downloaded: run.report?.downloaded }).toEqual({
      result: 'unverifiable',
      downloaded: undefined
    })
    expect(run.report?.reason).toMatch(
      /^download http:\/\/127\.0\.0\.1:\d+\/bomb\.bin: the server sent content-encoding 'br' although only identity was accepted$/
    )
  }, 60_000)

  it('item 8: plain http to loopback needs the explicit test setting', async () => {
    server.route('/model.bin', ok(Buffer.from('weights')))
    const run = await check(`${server.url}/model.bin`, {
      VERIFY_MODEL_ALLOW_LOOPBACK_HTTP: 'false'
    })
    expect(run.outputs.result).toBe('invalid')
    expect(run.report?.reason).toMatch(
      /^download http:\/\/127\.0\.0\.1:\d+\/model\.bin: only https URLs are fetched \(plain http to loopback only with VERIFY_MODEL_ALLOW_LOOPBACK_HTTP=true, for test servers\)$/
    )
  }, 60_000)

  describe('item 8: redirects from a public https origin', () => {
    let tls: https.Server
    let origin: string
    let env: Record<string, string>
    let secretService: TestServer
    beforeAll(async () => {
      // models.example.test is a public host to the action: a preload resolves it to this
      // machine's test server, whose certificate the action trusts through NODE_EXTRA_CA_CERTS.
      const certDir = mkdtempSync(path.join(dir, 'tls-'))
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=models.example.test',
          '-addext',
          'subjectAltName=DNS:models.example.test',
          '-keyout',
          path.join(certDir, 'key.pem'),
          '-out',
          path.join(certDir, 'cert.pem')
        ],
        { stdio: 'ignore' }
      )
      const preload = path.join(certDir, 'resolve.mjs')
      writeFileSync(
        preload,
        `import dns from 'node:dns'
const lookup = dns.lookup
dns.lookup = function (host, options, callback) {
  if (typeof options === 'function') { callback = options; options = {} }
  if (host !== 'models.example.test') return lookup.call(this, host, options, callback)
  if (options && options.all) return process.nextTick(callback, null, [{ address: '127.0.0.1', family: 4 }])
  return process.nextTick(callback, null, '127.0.0.1', 4)
}
`
      )
      secretService = await startServer({ '/secret': [ok(Buffer.from('local service secret'))] })
      tls = https.createServer(
        {
          key: readFileSync(path.join(certDir, 'key.pem')),
          cert: readFileSync(path.join(certDir, 'cert.pem'))
        },
        (req, res) => {
          const target =
            req.url === '/to-loopback'
              ? `${secretService.url}/secret`
              : req.url === '/to-http'
                ? 'http://models.example.test:9/model.bin'
                : undefined
          if (target) res.writeHead(302, { location: target }).end()
          else res.writeHead(200, { 'content-length': 7 }).end('weights')
        }
      )
      await new Promise<void>(resolve => tls.listen(0, '127.0.0.1', resolve))
      origin = `https://models.example.test:${(tls.address() as AddressInfo).port}`
      env = {
        NODE_OPTIONS: `--import ${preload}`,
        NODE_EXTRA_CA_CERTS: path.join(certDir, 'cert.pem')
      }
    })
    afterAll(async () => {
      tls.close()
      tls.closeAllConnections()
      await secretService?.close()
    })

    it('the https origin itself is fetched (the setup works)', async () => {
      const run = await check(`${origin}/model.bin`, env)
      expect(run.outputs.result).toBe('mismatch')
      expect(run.report?.downloaded?.manifest[0]?.size).toBe(7)
    }, 60_000)

    it.each([
      ['loopback', '/to-loopback', /http:\/\/127\.0\.0\.1:\d+\/secret/],
      ['plain http', '/to-http', /http:\/\/models\.example\.test:9\/model\.bin/]
    ])(
      'a redirect to %s is refused, and nothing about its target is reported',
      async (_, route, target) => {
        const run = await check(`${origin}${route}`, { ...env, ...LOOPBACK })
        expect({ result: run.outputs.result, downloaded: run.report?.downloaded }).toEqual({
          result: 'invalid',
          downloaded: undefined
        })
        expect(run.report?.reason).toMatch(/^download https:\/\/models\.example\.test:\d+\/to-/)
        expect(run.report?.reason).toMatch(target)
        expect(run.report?.reason).toMatch(
          /: a redirect from a non-loopback https origin may not lead to loopback or plain http$/
        )
        expect(secretService.requests('/secret')).toBe(0)
      },
      60_000
    )
  })
})

describeDocker('docker pull through the bundled action', () => {
  let dir: string
  let registry: http.Server
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verify-model-pull-'))
    await buildBusyboxImage()
    // A registry that accepts every connection and never answers.
    registry = http.createServer(req => req.resume())
    await new Promise<void>(resolve => registry.listen(0, '127.0.0.1', resolve))
  })
  afterAll(() => {
    registry.closeAllConnections()
    registry.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('item 6: a pull that never finishes meets its deadline', async () => {
    const port = (registry.address() as AddressInfo).port
    const repository = `127.0.0.1:${port}/verify-model-test/never`
    const { sba } = signedLedger(
      dir,
      {
        uri: `oci://${repository}`,
        sha256: 'b'.repeat(64),
        repository,
        reference: `${repository}@sha256:${'b'.repeat(64)}`,
        platform: 'linux/amd64'
      },
      {}
    )
    const run = await runBundledAction(
      { attestation: sba, 'public-key': publicKey, mode: 'reproduce' },
      {
        baseDir: dir,
        // No minimum throughput: this test is of the deadline alone.
        env: { VERIFY_MODEL_PULL_TIMEOUT_MS: '4000', VERIFY_MODEL_MIN_PULL_RATE: '0' },
        timeoutMs: 60_000
      }
    )
    expect(run.outputs.result).toBe('unverifiable')
    expect(run.report?.reason).toBe(
      `environment: docker pull ${repository}@sha256:${'b'.repeat(64)} did not finish within the deadline of 4 s (VERIFY_MODEL_PULL_TIMEOUT_MS)`
    )
    expect(run.durationMs).toBeLessThan(30_000)
  }, 90_000)

  it('item 6: a pull below the minimum throughput fails with the numbers, and the daemon stops pulling', async () => {
    // 10 KiB/s of an 8 MiB layer: the pull would end, after 14 minutes.
    const registry = await startTestRegistry({
      ...(await imageLayer([{ name: 'weights.bin', content: randomBytes(8 * 2 ** 20) }])),
      drip: { chunkBytes: 1024, intervalMs: 100 }
    })
    try {
      const { sba } = signedLedger(dir, registry.image, {})
      const run = await runBundledAction(
        { attestation: sba, 'public-key': publicKey, mode: 'reproduce' },
        {
          baseDir: dir,
          env: { VERIFY_MODEL_PULL_TIMEOUT_MS: '40000', VERIFY_MODEL_MIN_PULL_RATE: '64k' },
          timeoutMs: 60_000
        }
      )
      expect(run.outputs.result).toBe('unverifiable')
      expect(run.report?.reason).toMatch(
        new RegExp(
          `^environment: docker pull ${escapeRegExp(registry.image.reference)}: \\d+ bytes in the last 10\\.0 s \\(\\d+ B/s\\), below the minimum of 65536 B/s \\(VERIFY_MODEL_MIN_PULL_RATE\\)$`
        )
      )
      expect(run.durationMs).toBeLessThan(30_000)
      const sentAtVerdict = registry.layerBytesSent()
      await new Promise(resolve => setTimeout(resolve, 2000))
      expect(registry.layerBytesSent() - sentAtVerdict).toBeLessThan(2048)
    } finally {
      await registry.close()
    }
  }, 90_000)
})
