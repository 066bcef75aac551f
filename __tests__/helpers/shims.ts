import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import path from 'node:path'

/**
 * A new directory under `dir`, to put first on PATH, holding `command` as a shell script that
 * runs `before` and then the real command with the same arguments.
 */
export function commandShim(dir: string, command: string, before: string): string {
  const bin = mkdtempSync(path.join(dir, `${command}-shim-`))
  const real = execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim()
  writeFileSync(path.join(bin, command), `#!/bin/sh\n${before}\nexec ${real} "$@"\n`)
  chmodSync(path.join(bin, command), 0o755)
  return bin
}
