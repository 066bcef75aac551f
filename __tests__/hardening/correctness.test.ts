// Issue 13 items 9–12 through the bundles: the dataset cache hits on the second run, 200,000
// files in one output directory, `.gitattributes` eol conversion, `build --out` ownership.
import { execFileSync } from 'node:child_process'
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync
} from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { runBundledAction, spawnNode } from '../helpers/action-runner.js'
import { buildBusyboxImage, describeDocker } from '../helpers/docker.js'
import { publishModel, type PublishedModel } from '../helpers/fixture.js'
import { ok, startServer, type TestServer } from '../helpers/http-server.js'
import { repoRoot } from '../helpers/paths.js'
import type { ImageRef } from '../../src/protocol/ledger.js'
import { publicKey, signedLedger } from './ledgers.js'

const cliBundle = path.join(repoRoot, 'dist/cli/index.js')

interface Lookup {
  key: string
  version: string
  hit: boolean
}

/**
 * The Actions cache service (v1 protocol, what @actions/cache speaks with ACTIONS_CACHE_URL):
 * entries by key and version, reserve / upload / commit, archive download. Records lookups.
 */
async function cacheService() {
  const entries = new Map<string, Buffer>()
  const pending = new Map<number, { key: string; version: string; chunks: Buffer[] }>()
  const lookups: Lookup[] = []
  let nextId = 1
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1')
      const body = Buffer.concat(chunks)
      const json = (status: number, value: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value))
      const id = /^\/_apis\/artifactcache\/caches\/(\d+)$/.exec(url.pathname)?.[1]
      if (req.method === 'GET' && url.pathname === '/_apis/artifactcache/cache') {
        const key = url.searchParams.get('keys') ?? ''
        const version = url.searchParams.get('version') ?? ''
        const hit = entries.has(`${key}/${version}`)
        lookups.push({ key, version, hit })
        if (!hit) return res.writeHead(204).end()
        return json(200, {
          cacheKey: key,
          archiveLocation: `http://127.0.0.1:${port}/archive/${encodeURIComponent(`${key}/${version}`)}`
        })
      }
      if (req.method === 'POST' && url.pathname === '/_apis/artifactcache/caches') {
        const { key, version } = JSON.parse(body.toString()) as { key: string; version: string }
        pending.set(nextId, { key, version, chunks: [] })
        return json(201, { cacheId: nextId++ })
      }
      if (req.method === 'PATCH' && id) {
        pending.get(Number(id))?.chunks.push(body)
        return res.writeHead(204).end()
      }
      if (req.method === 'POST' && id) {
        const upload = pending.get(Number(id))!
        entries.set(`${upload.key}/${upload.version}`, Buffer.concat(upload.chunks))
        return res.writeHead(204).end()
      }
      if (req.method === 'GET' && url.pathname.startsWith('/archive/')) {
        const archive = entries.get(decodeURIComponent(url.pathname.slice('/archive/'.length)))
        if (!archive) return res.writeHead(404).end()
        return res.writeHead(200, { 'content-length': archive.length }).end(archive)
      }
      res.writeHead(404).end()
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/`,
    lookups,
    close: () => {
      server.closeAllConnections()
      server.close()
    }
  }
}

describeDocker('correctness through the bundles', () => {
  let dir: string
  let image: ImageRef
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verify-model-correct-'))
    image = await buildBusyboxImage()
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('item 9: the second run restores the dataset from the cache', async () => {
    const data: TestServer = await startServer()
    const cache = await cacheService()
    try {
      const published: PublishedModel = await publishModel(path.join(dir, 'publisher'), {
        image,
        datasetUri: `${data.url}/data.tar.gz`
      })
      data.route('/data.tar.gz', ok(readFileSync(published.datasetArchive)))
      const verify = () =>
        runBundledAction(
          {
            attestation: published.sbaPath,
            'public-key': published.publicKey,
            model: published.modelDir
          },
          {
            baseDir: dir,
            timeoutMs: 90_000,
            env: { ACTIONS_CACHE_URL: cache.url, VERIFY_MODEL_ALLOW_LOOPBACK_HTTP: 'true' }
          }
        )
      const first = await verify()
      const second = await verify()
      expect([first.outputs.result, second.outputs.result]).toEqual(['verified', 'verified'])
      expect(cache.lookups.map(lookup => lookup.hit)).toEqual([false, true])
      expect(cache.lookups[1].version).toBe(cache.lookups[0].version)
      expect(data.requests('/data.tar.gz')).toBe(1)
      expect(second.stdout).toContain('dataset cache: restored and re-verified')
    } finally {
      cache.close()
      await data.close()
    }
  }, 180_000)

  it('item 10: 200,000 files under one output directory', async () => {
    // Small files in memory (tmpfs) when the machine has it: the point is the count, not the disk.
    const shm = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/verify-model-many-') : dir
    const { sba } = signedLedger(dir, image, {
      command: ['sh', '-c', 'mkdir /out/many && cd /out/many && seq 200000 | xargs touch'],
      timeoutSeconds: 300
    })
    const run = await runBundledAction(
      { attestation: sba, 'public-key': publicKey, mode: 'reproduce' },
      { baseDir: shm, timeoutMs: 280_000 }
    ).finally(() => shm !== dir && rmSync(shm, { recursive: true, force: true }))
    expect({ result: run.outputs.result, reason: run.report?.reason }).toMatchObject({
      result: 'reproduced'
    })
    expect(run.report?.reproduced?.manifest).toHaveLength(200_000)
  }, 300_000)

  it('item 11: .gitattributes eol conversion does not change the checked-out dependency', async () => {
    const source = path.join(dir, 'eol-source')
    execFileSync('git', ['init', '-q', '-b', 'main', source])
    writeFileSync(path.join(source, '.gitattributes'), '* text eol=crlf\n')
    writeFileSync(path.join(source, 'requirements.txt'), 'numpy==1.26.4\ntorch==2.3.0\n')
    writeFileSync(path.join(source, 'build.sh'), 'cat /src/requirements.txt > /out/model.bin\n')
    execFileSync('git', ['-C', source, 'add', '-A'])
    execFileSync('git', [
      '-C',
      source,
      '-c',
      'user.name=T',
      '-c',
      'user.email=t@e',
      'commit',
      '-qm',
      'eol'
    ])
    const statement = path.join(dir, 'eol-statement.json')
    const init = await spawnNode(cliBundle, {
      args: [
        'ledger',
        'init',
        '--source-dir',
        source,
        '--image',
        image.reference,
        '--dependency',
        'requirements.txt',
        '--output',
        'model.bin',
        '-o',
        statement,
        '--',
        'sh',
        'build.sh'
      ],
      cwd: dir,
      env: process.env,
      timeoutMs: 60_000
    })
    expect({ code: init.exitCode, stderr: init.stderr }).toMatchObject({ code: 0 })
    const built = await spawnNode(cliBundle, {
      args: ['build', statement, '--out', path.join(dir, 'eol-out')],
      cwd: dir,
      env: process.env,
      timeoutMs: 90_000
    })
    expect({ code: built.exitCode, stderr: built.stderr }).toMatchObject({ code: 0 })
    expect(readFileSync(path.join(dir, 'eol-out/model.bin'), 'utf8')).toBe(
      'numpy==1.26.4\ntorch==2.3.0\n'
    )
  }, 120_000)

  it('item 12: build --out leaves the outputs owned by the caller, 0755/0644', async () => {
    const { sba } = signedLedger(dir, image, {
      command: [
        'sh',
        '-c',
        'mkdir -p /out/sub && echo w > /out/sub/model.bin && chmod 777 /out/sub && chmod 666 /out/sub/model.bin'
      ]
    })
    const out = path.join(dir, 'owned-out')
    const built = await spawnNode(cliBundle, {
      args: ['build', sba, '--public-key', publicKey, '--out', out],
      cwd: dir,
      env: process.env,
      timeoutMs: 90_000
    })
    expect({ code: built.exitCode, stderr: built.stderr }).toMatchObject({ code: 0 })
    const uid = process.getuid!()
    const modes = [out, path.join(out, 'sub'), path.join(out, 'sub/model.bin')].map(file => {
      const stats = statSync(file)
      return {
        file: path.relative(out, file),
        uid: stats.uid,
        mode: (stats.mode & 0o7777).toString(8)
      }
    })
    expect(modes).toEqual([
      { file: '', uid, mode: '755' },
      { file: 'sub', uid, mode: '755' },
      { file: 'sub/model.bin', uid, mode: '644' }
    ])
    expect(readdirSync(out)).toEqual(['sub'])
  }, 120_000)
})
