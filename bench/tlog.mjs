#!/usr/bin/env node
// Bundles bench/tlog.ts with ncc (as the CLI is bundled) into a temporary directory and runs it.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const out = mkdtempSync(path.join(os.tmpdir(), 'bench-tlog-build-'))
try {
  execFileSync(
    path.join(repo, 'node_modules/.bin/ncc'),
    ['build', path.join(repo, 'bench/tlog.ts'), '-o', out, '--target', 'es2022', '--quiet'],
    { stdio: 'inherit', cwd: repo }
  )
  writeFileSync(path.join(out, 'package.json'), '{"type":"module"}\n')
  execFileSync(process.execPath, [path.join(out, 'index.js'), ...process.argv.slice(2)], {
    stdio: 'inherit'
  })
} finally {
  rmSync(out, { recursive: true, force: true })
}
