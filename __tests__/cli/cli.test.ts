import { beforeAll, describe, expect, it } from '@jest/globals'
import { createHash } from 'node:crypto'
import { mkdtempSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { cli } from '../helpers/cli.js'
import { makeGitRepo } from '../helpers/git.js'
import { vectorsDir } from '../helpers/paths.js'
import { VERSION } from '../../src/version.js'

const image = `127.0.0.1:5000/acme/trainer@sha256:${'6'.repeat(64)}`

describe('verify-model CLI', () => {
  let dir: string
  let source: string
  let commit: string

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'cli-'))
    source = path.join(dir, 'source')
    commit = makeGitRepo(source, {
      'train.sh': 'echo hi > /out/model.bin\n',
      'requirements.lock': 'numpy==1.24.2\n'
    })
    mkdirSync(path.join(dir, 'data'))
    writeFileSync(path.join(dir, 'data', 'train.csv'), '1,2\n')
    mkdirSync(path.join(dir, 'model'))
    writeFileSync(path.join(dir, 'model', 'model.bin'), 'hi\n')
  })

  it('prints usage and its version', async () => {
    const help = await cli('--help')
    expect(help.code).toBe(0)
    for (const command of [
      'digest',
      'keygen',
      'sign',
      'verify-sba',
      'capability',
      'ledger',
      'build',
      'verify'
    ]) {
      expect(help.stdout).toContain(command)
    }
    expect((await cli('--version')).stdout.trim()).toBe(VERSION)
    expect(JSON.parse(readFileSync('package.json', 'utf8')).version).toBe(VERSION)
  })

  it('exits 2 on a usage error with one clear line', async () => {
    const result = await cli('verify-sba')
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/missing required argument 'sba'/)
    const unknown = await cli('frobnicate')
    expect(unknown.code).toBe(2)
  })

  it('digests a tree like the vectors, with --json and --manifest', async () => {
    const tree = JSON.parse(readFileSync(path.join(vectorsDir, 'tree.json'), 'utf8')).cases[2]
    const target = path.join(dir, 'tree')
    for (const [name, content] of Object.entries(tree.files as Record<string, string>)) {
      mkdirSync(path.dirname(path.join(target, name)), { recursive: true })
      writeFileSync(path.join(target, name), Buffer.from(content, 'base64'))
    }
    const plain = await cli('digest', target)
    expect(plain).toEqual({ code: 0, stdout: `${tree.root}\n`, stderr: '' })
    const manifestFile = path.join(dir, 'manifest.json')
    const json = await cli('digest', target, '--json', '--manifest', manifestFile)
    expect(JSON.parse(json.stdout)).toEqual({ root: tree.root, manifest: tree.manifest })
    expect(JSON.parse(readFileSync(manifestFile, 'utf8'))).toEqual({
      root: tree.root,
      manifest: tree.manifest
    })
    const single = await cli(
      'digest',
      path.join(target, 'config.json'),
      '--single-name',
      'x/config.json',
      '--json'
    )
    expect(JSON.parse(single.stdout).manifest[0].path).toBe('x/config.json')
    expect((await cli('digest', path.join(dir, 'missing'))).code).toBe(2)
  })

  it('round-trips keygen → ledger init → sign → verify-sba → capability', async () => {
    const prefix = path.join(dir, 'publisher')
    const keygen = await cli('keygen', '--out', prefix)
    expect(keygen.code).toBe(0)
    const keyId = keygen.stdout.trim()
    expect(keyId).toMatch(/^[0-9a-f]{64}$/)
    expect(statSync(`${prefix}.key`).mode & 0o777).toBe(0o600)
    expect((await cli('keygen', '--out', prefix)).code).toBe(2)

    writeFileSync(path.join(source, 'requirements.lock'), 'numpy==9.9.9 (uncommitted)\n')
    const statement = path.join(dir, 'statement.json')
    const init = await cli(
      'ledger',
      'init',
      '--source-dir',
      source,
      '--image',
      image,
      '--dataset',
      path.join(dir, 'data'),
      '--dependency',
      'requirements.lock',
      '--output',
      'model.bin',
      '--env',
      'SEED=0',
      '--allow-dirty',
      '-o',
      statement,
      '--',
      'sh',
      'train.sh'
    )
    expect(init.code).toBe(0)
    expect(init.stderr).toMatch(
      /^warning: --source-dir .* has 1 uncommitted change\(s\) \(requirements\.lock\)/
    )
    const ledger = JSON.parse(readFileSync(statement, 'utf8'))
    expect(ledger.predicate.source).toEqual({
      uri: `git+file://${source}`,
      digest: { gitCommit: commit }
    })
    expect(ledger.predicate.build.command).toEqual(['sh', 'train.sh'])
    expect(ledger.predicate.build.sourceDateEpoch).toBe(1700000000)
    // The committed file, not the dirty working tree: that is what verifiers check out.
    expect(ledger.predicate.dependencies[0].digest.sha256).toBe(
      createHash('sha256').update('numpy==1.24.2\n').digest('hex')
    )
    expect(ledger.predicate.dataset.digest.treeSha256).toBe(
      (await cli('digest', path.join(dir, 'data'))).stdout.trim()
    )

    const sba = path.join(dir, 'model.sba.json')
    expect((await cli('sign', statement, '--key', `${prefix}.key`, '-o', sba)).code).toBe(0)

    const verified = await cli('verify-sba', sba, '--public-key', `${prefix}.pub`, '--json')
    expect(verified.code).toBe(0)
    const facts = JSON.parse(verified.stdout)
    expect(facts.keyIds).toEqual([keyId])
    expect(facts.attestationDigest).toMatch(/^[0-9a-f]{64}$/)

    const capability = await cli(
      'capability',
      '--sba',
      sba,
      '--public-key',
      `${prefix}.pub`,
      '--model',
      path.join(dir, 'model')
    )
    expect(capability.code).toBe(0)
    const ocap = capability.stdout.trim()
    expect(ocap).toMatch(/^ocap1:[0-9a-f]{64}$/)
    const expectOk = await cli(
      'capability',
      '--sba',
      sba,
      '--public-key',
      `${prefix}.pub`,
      '--model',
      path.join(dir, 'model'),
      '--expect',
      ocap
    )
    expect(expectOk.code).toBe(0)
    const expectBad = await cli(
      'capability',
      '--sba',
      sba,
      '--public-key',
      `${prefix}.pub`,
      '--model',
      path.join(dir, 'model'),
      '--expect',
      `ocap1:${'0'.repeat(64)}`
    )
    expect(expectBad.code).toBe(1)
    expect(expectBad.stderr).toMatch(/^mismatch: /)

    const text = readFileSync(sba)
    for (let i = 0; i < text.length; i += Math.max(1, Math.floor(text.length / 150))) {
      const flipped = Buffer.from(text)
      flipped[i] ^= 0x01
      const file = path.join(dir, 'flipped.json')
      writeFileSync(file, flipped)
      const result = await cli('verify-sba', file, '--public-key', `${prefix}.pub`, '--json')
      if (result.code === 0) {
        // Only a flip inside the keyid hint may leave the signature and statement intact.
        expect(JSON.parse(result.stdout).attestationDigest).toBe(facts.attestationDigest)
      } else {
        expect(result.code).toBe(1)
        expect(JSON.parse(result.stdout)).toEqual({
          result: 'invalid',
          code: expect.any(String),
          reason: expect.any(String)
        })
      }
    }
  })

  it('refuses to sign a statement that fails validation, naming the field', async () => {
    const bad = JSON.parse(
      Buffer.from(
        JSON.parse(readFileSync(path.join(vectorsDir, 'sba.json'), 'utf8')).cases.find(
          (c: { name: string }) => c.name === 'output-traversal'
        ).envelope.payload,
        'base64'
      ).toString('utf8')
    )
    const file = path.join(dir, 'bad-statement.json')
    writeFileSync(file, JSON.stringify(bad))
    const prefix = path.join(dir, 'signer')
    await cli('keygen', '--out', prefix)
    const result = await cli('sign', file, '--key', `${prefix}.key`)
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/predicate\.build\.outputs\[\d\]/)
  })

  it('verify-sba exits 1 for a wrong key and 2 for an unreadable key', async () => {
    const vectors = JSON.parse(readFileSync(path.join(vectorsDir, 'sba.json'), 'utf8'))
    const keys = JSON.parse(readFileSync(path.join(vectorsDir, 'keys.json'), 'utf8')).keys
    const sba = path.join(dir, 'vector.sba.json')
    writeFileSync(sba, JSON.stringify(vectors.cases[0].envelope))
    const wrong = await cli('verify-sba', sba, '--public-key', keys[1].publicRawHex)
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(/^invalid: /)
    const right = await cli('verify-sba', sba, '--public-key', keys[0].publicRawBase64)
    expect(right.code).toBe(0)
    expect(right.stdout).toContain(vectors.cases[0].attestationDigest)
    expect((await cli('verify-sba', sba, '--public-key', 'nonsense')).code).toBe(2)
  })
})
