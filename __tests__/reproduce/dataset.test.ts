import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { treeSha256 } from '../../src/digest/tree.js'
import { download } from '../../src/download.js'
import { VerifyError } from '../../src/errors.js'
import { prepareDataset, type DatasetProgress } from '../../src/reproduce/dataset.js'
import { tarArchive, zipArchive, type TarMember } from '../helpers/archives.js'
import { ok, startServer, type TestServer } from '../helpers/http-server.js'

const files: Record<string, string> = {
  'train.csv': 'x,y\n1,2\n3,4\n',
  'labels/classes.txt': 'cat\ndog\n',
  'README.md': '# data\n'
}
const members: TarMember[] = Object.entries(files).map(([name, content]) => ({ name, content }))

let server: TestServer
let root: string
let workDir: string
let sourceDir: string
let expectedRoot: string

beforeAll(async () => {
  server = await startServer()
})
afterAll(async () => {
  await server.close()
})
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'dataset-test-'))
  workDir = path.join(root, 'work')
  sourceDir = path.join(root, 'data')
  await mkdir(workDir)
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(sourceDir, name)), { recursive: true })
    await writeFile(path.join(sourceDir, name), content)
  }
  expectedRoot = (await treeSha256(sourceDir)).root
})
afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

/** The loopback server allows plain http; retries stay fast. */
const fastDownload: typeof download = (url, dest, options) =>
  download(url, dest, { ...options, timeoutMs: 2_000, retries: 1, sleep: async () => {} })

async function failure(promise: Promise<unknown>, verdict: string): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e
  )
  expect(error).toBeInstanceOf(VerifyError)
  expect((error as VerifyError).verdict).toBe(verdict)
  return (error as VerifyError).message
}

describe('prepareDataset from a directory', () => {
  it('returns the directory and its digest when the root matches', async () => {
    const result = await prepareDataset({ treeSha256: expectedRoot }, { dir: sourceDir, workDir })
    expect(result?.dir).toBe(sourceDir)
    expect(result?.digest.root).toBe(expectedRoot)
    expect(result?.digest.manifest.map(e => e.path)).toEqual([
      'README.md',
      'labels/classes.txt',
      'train.csv'
    ])
  })

  it('names both roots and the fix when the directory differs', async () => {
    await writeFile(path.join(sourceDir, 'train.csv'), 'x,y\n1,2\n3,5\n')
    const actual = (await treeSha256(sourceDir)).root
    const message = await failure(
      prepareDataset({ treeSha256: expectedRoot }, { dir: sourceDir, workDir }),
      'invalid'
    )
    expect(message).toContain(
      `predicate.dataset.digest.treeSha256: ledger ${expectedRoot}, directory ${sourceDir} ${actual}`
    )
    expect(message).toContain('ledger init --dataset DIR')
  })

  it('is unverifiable when the directory does not exist', async () => {
    expect(
      await failure(
        prepareDataset({ treeSha256: expectedRoot }, { dir: path.join(root, 'nope'), workDir }),
        'unverifiable'
      )
    ).toMatch(/dataset directory .*nope does not exist/)
  })

  it('returns undefined when the ledger has no dataset, even if a directory is given', async () => {
    expect(await prepareDataset(undefined, { dir: sourceDir, workDir })).toBeUndefined()
  })
})

describe('prepareDataset by download', () => {
  const formats: [string, () => Promise<Buffer>][] = [
    ['tar.gz', () => tarArchive(members, { gzip: true })],
    ['tar', () => tarArchive(members)],
    ['zip', async () => zipArchive(members.map(m => ({ name: m.name, content: m.content })))]
  ]
  for (const [format, build] of formats) {
    it(`downloads and unpacks a ${format} whose root matches`, async () => {
      // Named .bin: the format is found from the content.
      server.route(`/data-${format}.bin`, ok(await build()))
      const phases = new Set<string>()
      const result = await prepareDataset(
        { uri: `${server.url}/data-${format}.bin`, treeSha256: expectedRoot },
        {
          workDir,
          download: fastDownload,
          onProgress: (p: DatasetProgress) => phases.add(p.phase)
        }
      )
      expect(result?.dir).toBe(path.join(workDir, 'dataset'))
      expect(result?.digest.root).toBe(expectedRoot)
      expect(await readFile(path.join(workDir, 'dataset', 'labels/classes.txt'), 'utf8')).toBe(
        files['labels/classes.txt']
      )
      expect(phases).toEqual(new Set(['download', 'hash']))
      // The archive itself is removed once unpacked.
      expect(await readdir(workDir)).toEqual(['dataset'])
    })
  }

  it('gives the directory root for an archive made as documented: tar -C DIR -czf data.tar.gz .', async () => {
    const archive = path.join(root, 'data.tar.gz')
    execFileSync('tar', ['-C', sourceDir, '-czf', archive, '.'])
    server.route('/documented.tar.gz', ok(await readFile(archive)))
    const result = await prepareDataset(
      { uri: `${server.url}/documented.tar.gz`, treeSha256: expectedRoot },
      { workDir, download: fastDownload }
    )
    expect(result?.digest.root).toBe(expectedRoot)
  })

  it('keeps a single top-level directory and explains the root that follows', async () => {
    const wrapped = members.map(m => ({ ...m, name: `data/${m.name}` }))
    server.route('/wrapped.tar.gz', ok(await tarArchive(wrapped, { gzip: true })))
    const message = await failure(
      prepareDataset(
        { uri: `${server.url}/wrapped.tar.gz`, treeSha256: expectedRoot },
        { workDir, download: fastDownload }
      ),
      'invalid'
    )
    expect(message).toMatch(
      new RegExp(
        `ledger ${expectedRoot}, archive http://127\\.0\\.0\\.1:\\d+/wrapped\\.tar\\.gz unpacks to [0-9a-f]{64}`
      )
    )
    expect(message).toContain("single top-level directory 'data/', which is kept")
  })

  it('rejects a hostile archive with nothing written outside the work directory', async () => {
    const hostile = [...members, { name: '../../escaped', content: 'pwned' }]
    server.route('/hostile.tar', ok(await tarArchive(hostile)))
    const message = await failure(
      prepareDataset(
        { uri: `${server.url}/hostile.tar`, treeSha256: expectedRoot },
        { workDir, download: fastDownload }
      ),
      'invalid'
    )
    expect(message).toMatch(/^predicate\.dataset\.uri: entry "\.\.\/\.\.\/escaped": '\.\.' segment/)
    expect((await readdir(root)).sort()).toEqual(['data', 'work'])
    expect(await readdir(workDir)).toEqual([])
  })

  it('caps the unpacked size', async () => {
    server.route('/big.tar', ok(await tarArchive(members)))
    expect(
      await failure(
        prepareDataset(
          { uri: `${server.url}/big.tar`, treeSha256: expectedRoot },
          { workDir, download: fastDownload, limits: { maxBytes: 10 } }
        ),
        'invalid'
      )
    ).toMatch(/unpacks to more than 10 bytes/)
  })

  it('is unverifiable when the download fails, naming the field', async () => {
    expect(
      await failure(
        prepareDataset(
          { uri: `${server.url}/gone.tar.gz`, treeSha256: expectedRoot },
          { workDir, download: fastDownload }
        ),
        'unverifiable'
      )
    ).toMatch(
      /^predicate\.dataset\.uri: download http:\/\/127\.0\.0\.1:\d+\/gone\.tar\.gz: HTTP 404/
    )
  })

  it('is unverifiable without a directory when the ledger gives no uri', async () => {
    expect(
      await failure(prepareDataset({ treeSha256: expectedRoot }, { workDir }), 'unverifiable')
    ).toBe(
      "predicate.dataset: the ledger's dataset has no uri: pass --dataset DIR (CLI) or the dataset input (action)"
    )
  })
})
