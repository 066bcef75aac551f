import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { treeSha256 } from '../../src/digest/tree.js'
import type { ManifestEntry } from '../../src/digest/types.js'
import { download } from '../../src/download.js'
import type { Ledger } from '../../src/protocol/ledger.js'
import { digestModel } from '../../src/verify/pipeline.js'
import { chunked, ok, startServer, type TestServer } from '../helpers/http-server.js'

// What the action does with model-url: each file is hashed while it downloads (download()
// returns the SHA-256 of the bytes it wrote), and the model's digest is built from those.
const bodies: Record<string, Buffer> = {
  'weights.bin': randomBytes(3 << 20),
  'config.json': Buffer.from('{"layers": 2}\n'),
  'Z-upper.txt': Buffer.alloc(0)
}

let server: TestServer
let scratch: string
beforeAll(async () => {
  server = await startServer({
    '/weights.bin': [chunked(bodies['weights.bin'])],
    '/config.json': [ok(bodies['config.json'])],
    '/Z-upper.txt': [ok(bodies['Z-upper.txt'])]
  })
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'model-digest-'))
})
afterAll(async () => {
  await server.close()
  fs.rmSync(scratch, { recursive: true, force: true })
})

async function downloadAll(dir: string, names: string[]): Promise<ManifestEntry[]> {
  fs.mkdirSync(dir)
  const hashed: ManifestEntry[] = []
  for (const name of names) {
    const { bytes, sha256 } = await download(`${server.url}/${name}`, path.join(dir, name))
    hashed.push({ path: name, size: bytes, sha256 })
  }
  return hashed
}

const ledgerWithOutputs = (outputs?: string[]) => ({ build: { outputs } }) as unknown as Ledger

describe('the digest of a model hashed while it downloaded', () => {
  it.each([
    ['one declared output names the file', ['model.bin'], 'model.bin'],
    ['no declared outputs: its own name', undefined, 'weights.bin']
  ])('a single file (%s) equals hashing the file', async (_case, outputs, name) => {
    const dir = path.join(scratch, `single-${name}`)
    const hashed = await downloadAll(dir, ['weights.bin'])
    const file = path.join(dir, 'weights.bin')
    const ledger = ledgerWithOutputs(outputs)
    const streamed = await digestModel(file, ledger, undefined, hashed)
    expect(streamed).toEqual(await digestModel(file, ledger))
    expect(streamed.manifest.map(entry => entry.path)).toEqual([name])
  })

  it('a directory of files (in download order, not path order) equals hashing the directory', async () => {
    const dir = path.join(scratch, 'several')
    const hashed = await downloadAll(dir, ['weights.bin', 'config.json', 'Z-upper.txt'])
    const ledger = ledgerWithOutputs(['weights.bin', 'config.json', 'Z-upper.txt'])
    const streamed = await digestModel(dir, ledger, undefined, hashed)
    expect(streamed).toEqual(await treeSha256(dir))
    expect(streamed.manifest.map(entry => entry.path)).toEqual([
      'Z-upper.txt',
      'config.json',
      'weights.bin'
    ])
  })

  it('is one pass: the files are not read again', async () => {
    const dir = path.join(scratch, 'one-pass')
    const hashed = await downloadAll(dir, ['config.json'])
    const file = path.join(dir, 'config.json')
    const before = await digestModel(file, ledgerWithOutputs(), undefined, hashed)
    fs.writeFileSync(file, '{"layers": 3}\n') // same size, other bytes
    expect(await digestModel(file, ledgerWithOutputs(), undefined, hashed)).toEqual(before)
    expect((await digestModel(file, ledgerWithOutputs())).root).not.toBe(before.root)
  })
})
