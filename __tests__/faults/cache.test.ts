// A misbehaving Actions cache service costs a warning and a bounded delay, never the verdict:
// the bundled action verifies a published model whose dataset comes from its ledger's uri (the
// path that uses the cache) while ACTIONS_CACHE_URL / ACTIONS_RESULTS_URL point at a loopback
// server that fails every request or never answers.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { runBundledAction, type BundledActionResult } from '../helpers/action-runner.js'
import { cli } from '../helpers/cli.js'
import { buildBusyboxImage, describeDocker } from '../helpers/docker.js'
import { publishModel, type PublishedModel } from '../helpers/fixture.js'
import { ok, startServer, type TestServer } from '../helpers/http-server.js'
import { recordCounts } from '../hostile/fuzz.js'

const CACHE_TIMEOUT_MS = 3000

interface CacheService {
  url: string
  requests: () => number
  close: () => Promise<void>
}

/** Answers every request with a 500, or never. */
async function misbehavingCache(behaviour: 'error' | 'hang'): Promise<CacheService> {
  let requests = 0
  const server = http.createServer((req, res) => {
    requests++
    req.resume()
    if (behaviour === 'error') res.writeHead(500, { 'content-type': 'text/plain' }).end('boom')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/`,
    requests: () => requests,
    close: () =>
      new Promise(resolve => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

const SERVICES = [
  {
    name: 'cache service v1 answers 500',
    behaviour: 'error' as const,
    env: (url: string) => ({ ACTIONS_CACHE_URL: url })
  },
  {
    name: 'cache service v2 never answers',
    behaviour: 'hang' as const,
    env: (url: string) => ({ ACTIONS_CACHE_SERVICE_V2: 'true', ACTIONS_RESULTS_URL: url })
  }
]

describeDocker('a cache service that errors or hangs', () => {
  let dir: string
  let server: TestServer
  let published: PublishedModel
  let capability: string
  const caches: CacheService[] = []
  const runs = new Map<string, { run: BundledActionResult; cacheRequests: number }>()

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verify-model-cache-faults-'))
    server = await startServer()
    published = await publishModel(path.join(dir, 'publisher'), {
      image: await buildBusyboxImage(),
      datasetUri: `${server.url}/data.tar.gz`
    })
    server.route('/data.tar.gz', ok(readFileSync(published.datasetArchive)))
    const computed = await cli(
      'capability',
      '--sba',
      published.sbaPath,
      '--public-key',
      published.publicKeyPath,
      '--model',
      published.modelDir,
      '--json'
    )
    capability = JSON.parse(computed.stdout).capability

    // One after the other: runs of the same dataset on one machine share its fixed restore path,
    // and a second run at the same time downloads without the cache.
    for (const service of SERVICES) {
      const cache = await misbehavingCache(service.behaviour)
      caches.push(cache)
      const run = await runBundledAction(
        {
          attestation: published.sbaPath,
          'public-key': published.publicKey,
          model: published.modelDir
        },
        {
          baseDir: dir,
          timeoutMs: 90_000,
          env: {
            ...service.env(cache.url),
            ACTIONS_RUNTIME_TOKEN: 'dummy-token',
            VERIFY_MODEL_CACHE_TIMEOUT_MS: String(CACHE_TIMEOUT_MS)
          }
        }
      )
      runs.set(service.name, { run, cacheRequests: cache.requests() })
    }
  }, 120_000)

  afterAll(async () => {
    await Promise.all(caches.map(cache => cache.close()))
    await server?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
    recordCounts('faults-cache-service', {
      services: SERVICES.length,
      verdictKept: [...runs.values()].filter(({ run }) => run.outputs.result === 'verified').length,
      slowestMs: Math.max(...[...runs.values()].map(({ run }) => run.durationMs))
    })
  })

  it.each(SERVICES.map(service => [service.name, service] as const))(
    '%s: verified all the same, with a warning',
    name => {
      const { run, cacheRequests } = runs.get(name)!
      const context = `--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`
      expect({ exit: run.exitCode, context }).toMatchObject({ exit: 0 })
      expect(run.outputs).toMatchObject({ result: 'verified', capability })
      // The cache was really asked, and its trouble shows as warnings only.
      expect(cacheRequests).toBeGreaterThan(0)
      const warnings = run.commands.filter(c => c.command === 'warning').map(c => c.message)
      expect(warnings.length).toBeGreaterThan(0)
      expect(warnings.join('\n')).toMatch(/cache/i)
      expect(run.commands.filter(c => c.command === 'error')).toEqual([])
      expect(server.requests('/data.tar.gz')).toBeGreaterThan(0)
    }
  )

  it('a hanging service costs at most the bound per call, and the step still ends', () => {
    const { run } = runs.get('cache service v2 never answers')!
    const warnings = run.commands.filter(c => c.command === 'warning').map(c => c.message)
    const seconds = CACHE_TIMEOUT_MS / 1000
    // A restore abandoned at its bound may still be writing: the dataset is downloaded elsewhere
    // and neither built from that directory nor saved, so no second call waits on the service.
    expect(warnings).toEqual([
      `dataset cache: restore did not finish within ${seconds} s; going on without the cache`
    ])
  })
})
