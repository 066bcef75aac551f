import { describe, expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
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
})
