import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { resolveCachedDataset, type CacheApi } from '../../src/action/dataset-cache.js'
import { treeSha256 } from '../../src/digest/tree.js'
import type { Ledger } from '../../src/protocol/ledger.js'
import { tarArchive } from '../helpers/archives.js'
import { ok, startServer, type TestServer } from '../helpers/http-server.js'

const files = { 'train.csv': 'x,y\n1,2\n', 'test.csv': 'x,y\n3,4\n' }

describe('resolveCachedDataset', () => {
  let server: TestServer
  let root: string
  let ledger: Ledger

  beforeAll(async () => {
    server = await startServer()
    server.route(
      '/data.tar.gz',
      ok(
        await tarArchive(
          Object.entries(files).map(([name, content]) => ({ name, content })),
          { gzip: true }
        )
      )
    )
    const reference = mkdtempSync(path.join(os.tmpdir(), 'dataset-ref-'))
    for (const [name, content] of Object.entries(files))
      writeFileSync(path.join(reference, name), content)
    root = (await treeSha256(reference)).root
    ledger = { dataset: { uri: `${server.url}/data.tar.gz`, treeSha256: root } } as Ledger
  })
  afterAll(() => server.close())

  function setup(cache: Partial<CacheApi>) {
    const workDir = mkdtempSync(path.join(os.tmpdir(), 'dataset-cache-'))
    const messages: string[] = []
    const saved: string[][] = []
    const api: CacheApi = {
      isFeatureAvailable: () => true,
      restoreCache: async () => undefined,
      saveCache: async paths => {
        saved.push(paths)
        return 1
      },
      ...cache
    }
    const options = {
      cache: api,
      workDir,
      warn: (m: string) => messages.push(m),
      info: () => undefined,
      timeoutMs: 300,
      cacheRoot: workDir,
      hold: () => undefined
    }
    return { workDir, messages, saved, options }
  }

  it('downloads and saves on a miss, under the path it restores to', async () => {
    const { workDir, saved, options } = setup({})
    const dir = await resolveCachedDataset(ledger, options)
    expect(dir).toBe(path.join(workDir, 'verify-model-dataset-cache', root))
    expect((await treeSha256(dir!)).root).toBe(root)
    expect(saved).toEqual([[dir]])
  })

  it('discards a restored dataset whose root differs, and downloads the right one', async () => {
    const { messages, options } = setup({
      restoreCache: async paths => {
        mkdirSync(paths[0], { recursive: true })
        writeFileSync(path.join(paths[0], 'train.csv'), 'poisoned\n')
        return 'hit'
      }
    })
    const dir = await resolveCachedDataset(ledger, options)
    expect((await treeSha256(dir!)).root).toBe(root)
    expect(messages.join('\n')).toMatch(/restored dataset's root .* is not/)
  })

  it('never builds from, nor saves, a restore abandoned at its time limit that writes late', async () => {
    let lateWrite: Promise<void> | undefined
    const { messages, saved, workDir, options } = setup({
      restoreCache: paths => {
        lateWrite = new Promise(resolve =>
          setTimeout(() => {
            mkdirSync(paths[0], { recursive: true })
            writeFileSync(path.join(paths[0], 'train.csv'), 'late\n')
            resolve()
          }, 600)
        )
        return new Promise(() => undefined)
      }
    })
    const dir = await resolveCachedDataset(ledger, options)
    await lateWrite
    expect(dir).not.toBe(path.join(workDir, 'verify-model-dataset-cache', root))
    expect((await treeSha256(dir!)).root).toBe(root)
    expect(saved).toEqual([])
    expect(messages.join('\n')).toMatch(/restore did not finish within 0.3 s/)
    expect(readdirSync(path.join(workDir, 'verify-model-dataset-cache', root))).toEqual([
      'train.csv'
    ])
  })

  it('restores to the same fixed path on every run, and leaves a path held by another run alone', async () => {
    const first = setup({})
    const held: string[] = []
    const dir = await resolveCachedDataset(ledger, { ...first.options, hold: d => held.push(d) })
    expect(held).toEqual([dir])
    expect(await resolveCachedDataset(ledger, first.options)).toBeUndefined()
  })

  it('returns undefined without a cache service or a downloadable dataset', async () => {
    expect(
      await resolveCachedDataset(ledger, setup({ isFeatureAvailable: () => false }).options)
    ).toBeUndefined()
    expect(
      await resolveCachedDataset({ dataset: { treeSha256: root } } as Ledger, setup({}).options)
    ).toBeUndefined()
  })
})
