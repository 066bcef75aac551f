// The npm package as a publisher installs it: `npm pack` of the committed bundle, a global
// install of the tarball into a temporary prefix (offline: it has no runtime dependency), then
// the installed `verify-model` with no repository and no node_modules around it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { makeGitRepo } from './helpers/git.js'
import { repoRoot } from './helpers/paths.js'

let dir: string
let prefix: string
let packed: { filename: string; size: number; files: { path: string }[] }

/** The environment of a publisher's shell: no jest NODE_OPTIONS, no repository on PATH. */
const env = (): NodeJS.ProcessEnv => {
  const publisher: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}`
  }
  delete publisher.NODE_OPTIONS
  return publisher
}

function verifyModel(...args: string[]) {
  return spawnSync(path.join(prefix, 'bin', 'verify-model'), args, {
    cwd: dir,
    env: env(),
    encoding: 'utf8'
  })
}

function sizeOf(target: string): number {
  const stats = statSync(target)
  if (!stats.isDirectory()) return stats.size
  return readdirSync(target).reduce((sum, name) => sum + sizeOf(path.join(target, name)), 0)
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'verify-model-package-'))
  prefix = path.join(dir, 'prefix')
  const npm = (args: string[], cwd: string) =>
    execFileSync('npm', [...args, '--offline', '--no-audit', '--no-fund'], {
      cwd,
      env: { ...env(), npm_config_cache: path.join(dir, 'npm-cache') },
      encoding: 'utf8'
    })
  packed = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], repoRoot))[0]
  npm(['install', '-g', '--prefix', prefix, path.join(dir, packed.filename)], dir)
}, 300_000)

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('the npm package', () => {
  it('carries only the CLI bundle, README, LICENSE and docs/protocol.md', () => {
    expect(packed.files.map(file => file.path).sort()).toEqual([
      'LICENSE',
      'README.md',
      'dist/cli/digest-worker.js',
      'dist/cli/index.js',
      'dist/cli/licenses.txt',
      'dist/cli/package.json',
      'docs/protocol.md',
      'package.json'
    ])
    console.log(`npm pack: ${packed.size} bytes`)
  })

  it('installs globally as one package with no dependencies', () => {
    const installed = path.join(prefix, 'lib', 'node_modules')
    expect(readdirSync(installed)).toEqual(['verify-model'])
    expect(readdirSync(path.join(installed, 'verify-model'))).not.toContain('node_modules')
    console.log(`global install: 1 package, ${sizeOf(installed)} bytes`)
  })

  it('runs --help and a publisher round trip from the installed command', () => {
    const help = verifyModel('--help')
    expect(help.status).toBe(0)
    expect(help.stdout).toContain('Usage: verify-model')

    const source = path.join(dir, 'source')
    makeGitRepo(source, { 'train.sh': 'cat /data/d.csv > /out/model.bin\n' })
    mkdirSync(path.join(dir, 'data'))
    writeFileSync(path.join(dir, 'data', 'd.csv'), '1,2\n')
    const steps = [
      ['keygen', '-o', 'publisher'],
      [
        'ledger',
        'init',
        '--source-dir',
        source,
        '--image',
        `127.0.0.1:5000/acme/trainer@sha256:${'e'.repeat(64)}`,
        '--dataset',
        'data',
        '--output',
        'model.bin',
        '-o',
        'statement.json',
        '--',
        'sh',
        'train.sh'
      ],
      ['sign', 'statement.json', '--key', 'publisher.key', '-o', 'model.sba.json'],
      ['verify-sba', 'model.sba.json', '--public-key', 'publisher.pub']
    ]
    for (const step of steps) {
      const result = verifyModel(...step)
      expect({ step: step[0], status: result.status, stderr: result.stderr }).toEqual({
        step: step[0],
        status: 0,
        stderr: ''
      })
      if (step[0] === 'verify-sba') expect(result.stdout).toMatch(/^valid\n/)
    }
  })
})
