// Bundles the action (dist/index.js) and the CLI (dist/cli/index.js) with ncc.
import { execFileSync } from 'node:child_process'
import { rmSync, writeFileSync, chmodSync } from 'node:fs'

const ncc = 'node_modules/.bin/ncc'
const bundles = [
  { entry: 'src/index.ts', out: 'dist' },
  { entry: 'src/cli/index.ts', out: 'dist/cli' },
  { entry: 'src/post-index.ts', out: 'dist/post' }
]

rmSync('dist', { recursive: true, force: true })
for (const { entry, out } of bundles) {
  execFileSync(
    ncc,
    ['build', entry, '-o', out, '--license', 'licenses.txt', '--target', 'es2022', '--quiet'],
    {
      stdio: 'inherit'
    }
  )
}
writeFileSync('dist/package.json', JSON.stringify({ type: 'module' }, null, 2) + '\n')
chmodSync('dist/cli/index.js', 0o755)
