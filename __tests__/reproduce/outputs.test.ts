import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import { treeSha256 } from '../../src/digest/tree.js'
import { collectOutputs } from '../../src/reproduce/outputs.js'

let work: string
let out: string

beforeEach(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'verify-model-outputs-'))
  out = path.join(work, 'out')
})
afterEach(async () => {
  await rm(work, { recursive: true, force: true })
})

async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, name)), { recursive: true })
    await writeFile(path.join(root, name), content)
  }
}

const built = {
  'model.safetensors': 'weights',
  'config.json': '{}',
  'logs/train.log': 'epoch 1',
  'tokenizer/vocab.txt': 'a b c',
  'tokenizer/merges/rules.txt': 'ab'
}

describe('collectOutputs', () => {
  it('digests all of /out when no outputs are declared', async () => {
    await writeTree(out, built)
    expect(await collectOutputs(out, undefined)).toEqual(await treeSha256(out))
  })

  it('digests exactly the declared files and directories, with paths relative to /out', async () => {
    await writeTree(out, built)
    const declaredOnly = path.join(work, 'declared-only')
    await writeTree(declaredOnly, {
      'model.safetensors': 'weights',
      'tokenizer/vocab.txt': 'a b c',
      'tokenizer/merges/rules.txt': 'ab'
    })
    const digest = await collectOutputs(out, ['tokenizer/', 'model.safetensors'])
    expect(digest).toEqual(await treeSha256(declaredOnly))
    expect(digest.manifest.map(entry => entry.path)).toEqual([
      'model.safetensors',
      'tokenizer/merges/rules.txt',
      'tokenizer/vocab.txt'
    ])
  })

  it('names one declared file by its declared path, as the single-file rule does for a download', async () => {
    await writeTree(out, built)
    const download = path.join(work, 'downloaded.bin')
    await writeFile(download, 'ab')
    const digest = await collectOutputs(out, ['tokenizer/merges/rules.txt'])
    expect(digest).toEqual(await treeSha256(download, { singleName: 'tokenizer/merges/rules.txt' }))
  })

  it('counts a file declared twice (directly and through its directory) once', async () => {
    await writeTree(out, built)
    const once = await collectOutputs(out, ['tokenizer'])
    expect(await collectOutputs(out, ['tokenizer/vocab.txt', 'tokenizer'])).toEqual(once)
  })

  it('is unverifiable when a declared output is missing or an empty directory, or /out is empty', async () => {
    await writeTree(out, built)
    await mkdir(path.join(out, 'empty'))
    await expect(collectOutputs(out, ['config.json', 'model.bin'])).rejects.toMatchObject({
      verdict: 'unverifiable',
      message: "predicate.build.outputs[1]: the build did not produce 'model.bin'"
    })
    await expect(collectOutputs(out, ['config.json/x'])).rejects.toMatchObject({
      verdict: 'unverifiable'
    })
    await expect(collectOutputs(out, ['empty'])).rejects.toMatchObject({
      verdict: 'unverifiable',
      message: expect.stringContaining("left the directory 'empty' empty")
    })
    const nothing = path.join(work, 'nothing')
    await mkdir(path.join(nothing, 'sub'), { recursive: true })
    await expect(collectOutputs(nothing, undefined)).rejects.toMatchObject({
      verdict: 'unverifiable',
      message: 'predicate.build.outputs: the build left /out empty'
    })
  })

  it('is invalid for a symlink anywhere under /out, declared or not', async () => {
    await writeTree(out, built)
    await symlink('/etc/passwd', path.join(out, 'logs/passwd'))
    for (const declared of [undefined, ['model.safetensors'], ['logs']])
      await expect(collectOutputs(out, declared)).rejects.toMatchObject({
        verdict: 'invalid',
        message: expect.stringContaining('/out/logs/passwd is a symbolic link: not a valid tree')
      })
  })

  it('is invalid for a FIFO under /out', async () => {
    await writeTree(out, built)
    execFileSync('mkfifo', [path.join(out, 'pipe')])
    await expect(collectOutputs(out, ['model.safetensors'])).rejects.toMatchObject({
      verdict: 'invalid',
      message: expect.stringContaining('/out/pipe is a FIFO')
    })
  })
})
