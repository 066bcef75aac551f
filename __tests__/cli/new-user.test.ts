// What a new user tripped over (issue 14, part 7), each through the CLI in-process.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { signEnvelope } from '../../src/protocol/envelope.js'
import { parsePrivateKey, parsePublicKey } from '../../src/protocol/keys.js'
import { renderReportText } from '../../src/cli/render.js'
import { cli } from '../helpers/cli.js'
import { makeGitRepo } from '../helpers/git.js'

const IMAGE = `127.0.0.1:5000/acme/trainer@sha256:${'e'.repeat(64)}`
let dir: string
let source: string
let prefix: string
let other: string

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'new-user-'))
  source = path.join(dir, 'source')
  makeGitRepo(source, { 'train.sh': 'echo hi > /out/model.bin\n' })
  prefix = path.join(dir, 'publisher')
  other = path.join(dir, 'other')
  expect((await cli('keygen', '-o', prefix)).code).toBe(0)
  expect((await cli('keygen', '--out', other)).code).toBe(0)
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

const keyIdOf = (file: string) => parsePublicKey(readFileSync(file, 'utf8')).keyId

const init = (...flags: string[]) =>
  cli('ledger', 'init', '--source-dir', source, '--image', IMAGE, ...flags, '--', 'sh', 'train.sh')

describe('one convention: -o, --out FILE is written, --output NAME is a build output', () => {
  it('ledger init warns when a declared output looks like a statement file', async () => {
    const result = await init('--output', 'statement2.json')
    expect(result.code).toBe(0)
    expect(result.stderr).toContain(
      'warning: --output statement2.json declares a build output under /out; to write the statement to a file use -o, --out'
    )
    expect(JSON.parse(result.stdout).predicate.build.outputs).toEqual(['statement2.json'])
  })

  it('sign writes with -o / --out, keeps --output as a hidden alias', async () => {
    const statement = path.join(dir, 'statement.json')
    expect((await init('-o', statement)).code).toBe(0)
    for (const flag of ['-o', '--out', '--output']) {
      const sba = path.join(dir, `sba${flag}.json`)
      expect((await cli('sign', statement, '--key', `${prefix}.key`, flag, sba)).code).toBe(0)
      expect(JSON.parse(readFileSync(sba, 'utf8')).payloadType).toBe('application/vnd.in-toto+json')
    }
    const help = (await cli('sign', '--help')).stdout
    expect(help).toContain('-o, --out <file>')
    expect(help).not.toContain('--output')
  })
})

describe('ledger init', () => {
  it('refuses a dirty --source-dir without --allow-dirty, and warns with it', async () => {
    const dirty = path.join(dir, 'dirty')
    makeGitRepo(dirty, { 'train.sh': 'v1\n' })
    writeFileSync(path.join(dirty, 'train.sh'), 'v2, not committed\n')
    writeFileSync(path.join(dirty, 'new.py'), 'untracked\n')
    const args = ['ledger', 'init', '--source-dir', dirty, '--image', IMAGE]
    const refused = await cli(...args, '--', 'sh', 'train.sh')
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(
      /^error: --source-dir .*dirty has 2 uncommitted change\(s\) \((train\.sh, new\.py|new\.py, train\.sh)\): the build uses commit HEAD, not the working tree; commit them, or pass --allow-dirty\n$/
    )
    const allowed = await cli(...args, '--allow-dirty', '--', 'sh', 'train.sh')
    expect(allowed.code).toBe(0)
    expect(allowed.stderr).toMatch(/^warning: --source-dir .* 2 uncommitted change\(s\)/)
  })

  it('rejects an image with no registry host (Docker would pull it from Docker Hub)', async () => {
    const result = await cli(
      'ledger',
      'init',
      '--source-dir',
      source,
      '--image',
      `acme/x@sha256:${'a'.repeat(64)}`,
      '--',
      'sh'
    )
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(
      "predicate.environment.uri: 'acme' is not a registry host (Docker would pull it from Docker Hub); name the registry, e.g. oci://docker.io/acme/x"
    )
  })

  it('says how to get the repository digest when given a local image ID', async () => {
    const result = await cli(
      'ledger',
      'init',
      '--source-dir',
      source,
      '--image',
      `sha256:${'a'.repeat(64)}`,
      '--',
      'sh'
    )
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("docker inspect --format '{{index .RepoDigests 0}}' IMAGE")
  })
})

describe('keys', () => {
  it('a mistyped key file says no such file', async () => {
    const statement = path.join(dir, 'statement.json')
    const sba = path.join(dir, 'sba-o.json')
    const typo = await cli('verify-sba', sba, '--public-key', `${prefix}.pbu`)
    expect(typo.code).toBe(2)
    expect(typo.stderr).toBe(
      `error: --public-key ${prefix}.pbu: no such file (a key given inline is hex or base64)\n`
    )
    const privateTypo = await cli('sign', statement, '--key', `${prefix}.kye`)
    expect(privateTypo.code).toBe(2)
    expect(privateTypo.stderr).toBe(`error: cannot read private key ${prefix}.kye: no such file\n`)
  })

  it('a wrong key names the trusted key id and the one the SBA was signed with', async () => {
    const statement = path.join(dir, 'statement-wrong-key.json')
    const sba = path.join(dir, 'wrong-key.sba.json')
    expect((await init('-o', statement)).code).toBe(0)
    expect((await cli('sign', statement, '--key', `${prefix}.key`, '-o', sba)).code).toBe(0)
    const signedBy = keyIdOf(`${prefix}.pub`)
    const trusted = keyIdOf(`${other}.pub`)
    const result = await cli('verify-sba', sba, '--public-key', `${other}.pub`, '--json')
    expect(result.code).toBe(1)
    expect(JSON.parse(result.stdout)).toMatchObject({
      result: 'invalid',
      code: 'SIGNATURE_THRESHOLD'
    })
    expect(result.stderr).toContain(
      `trusted key id(s) ${trusted}; the SBA's signatures name key id(s) ${signedBy}`
    )
  })
})

describe('one rule in one place', () => {
  it('verify-sba rejects a source uri with credentials, as verify does', async () => {
    const statement = {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: 'source', digest: { gitCommit: 'a'.repeat(40) } }],
      predicateType: 'https://openclaw.dev/build-ledger/v1',
      predicate: {
        source: { uri: 'git+https://user:pw@example.org/x', digest: { gitCommit: 'a'.repeat(40) } },
        environment: { uri: 'oci://127.0.0.1:5000/acme/x', digest: { sha256: 'e'.repeat(64) } },
        build: { command: ['sh'], sourceDateEpoch: 0 }
      }
    }
    const key = parsePrivateKey(readFileSync(`${prefix}.key`, 'utf8'))
    const sba = path.join(dir, 'credentials.sba.json')
    writeFileSync(sba, signEnvelope(Buffer.from(JSON.stringify(statement)), [key]))
    const result = await cli('verify-sba', sba, '--public-key', `${prefix}.pub`, '--json')
    expect(result.code).toBe(1)
    expect(JSON.parse(result.stdout)).toMatchObject({ result: 'invalid', code: 'LEDGER_FIELD' })
    expect(result.stderr).toContain('predicate.source.uri: credentials in the URL are not accepted')
  })
})

describe('build', () => {
  it('an existing --out directory is a usage error (exit 2), before anything runs', async () => {
    const out = path.join(dir, 'published')
    mkdirSync(out)
    const result = await cli('build', path.join(dir, 'statement.json'), '--out', out)
    expect(result.code).toBe(2)
    expect(result.stderr).toBe(`error: --out ${out} already exists: choose a new directory\n`)
  })
})

describe('the CLI report', () => {
  it('prints the time of every phase', () => {
    const text = renderReportText({
      schemaVersion: 1,
      mode: 'reproduce',
      result: 'reproduced',
      reason: 'the build reproduced',
      checks: [
        { name: 'signature', status: 'pass', detail: 'ok', durationMs: 12 },
        { name: 'source', status: 'pass', detail: 'commit', durationMs: 1340 },
        { name: 'build', status: 'pass', detail: 'exit 0', durationMs: 61_000 }
      ]
    })
    expect(text).toContain('  phases               signature 0.0 s, source 1.3 s, build 61.0 s\n')
  })
})
