import { describe, expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { treeSha256 } from '../src/digest/tree.js'
import { inThreadWorkers } from '../src/digest/workers.js'
import { repoRoot } from './helpers/paths.js'

function node(args: string[], env: NodeJS.ProcessEnv = {}) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !name.startsWith('INPUT_') && !name.startsWith('GITHUB_')
    )
  )
  return spawnSync(process.execPath, args, {
    cwd: repoRoot,
    env: { ...clean, ...env },
    encoding: 'utf8'
  })
}

describe('the committed bundles', () => {
  it('dist/index.js with no inputs fails with a clear "Input required" message', () => {
    const result = node([path.join(repoRoot, 'dist/index.js')])
    expect(result.status).toBe(1)
    expect(result.stdout).toContain('::error::Input required and not supplied: attestation')
    expect(result.stderr).not.toMatch(/ERR_MODULE_NOT_FOUND|SyntaxError/)
  })

  it('dist/cli/index.js --help prints usage', () => {
    const result = node([path.join(repoRoot, 'dist/cli/index.js'), '--help'])
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/^Usage: verify-model/)
    expect(result.stdout).toContain('verify-sba')
  })

  it('each bundle has its hashing thread beside it, and the CLI hashes with it', async () => {
    const worker = fs.readFileSync(path.join(repoRoot, 'dist/digest-worker.js'))
    expect(fs.readFileSync(path.join(repoRoot, 'dist/cli/digest-worker.js'))).toEqual(worker)
    // 300 files: enough for the engine to start its threads.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bundle-digest-'))
    try {
      for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dir, `f${i}`), `file ${i}`)
      const result = node([path.join(repoRoot, 'dist/cli/index.js'), 'digest', dir])
      expect(result.stderr).toBe('')
      const expected = await treeSha256(dir, { concurrency: 2, workers: inThreadWorkers })
      expect(result.stdout).toBe(`${expected.root}\n`)
      const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'bundle-without-worker-'))
      try {
        fs.cpSync(path.join(repoRoot, 'dist'), copy, { recursive: true })
        fs.rmSync(path.join(copy, 'cli/digest-worker.js'))
        const without = node([path.join(copy, 'cli/index.js'), 'digest', dir])
        expect(without.stderr).toContain(`${path.join(copy, 'cli/digest-worker.js')} is missing`)
      } finally {
        fs.rmSync(copy, { recursive: true, force: true })
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
