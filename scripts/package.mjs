// Bundles the action (dist/index.js) and the CLI (dist/cli/index.js) with ncc, and beside each
// the hashing thread's module (digest-worker.js), which a bundle loads relative to itself.
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, rmSync, writeFileSync } from 'node:fs'

const ncc = 'node_modules/.bin/ncc'
const workerBuild = 'dist/.digest-worker'
const bundles = [
  { entry: 'src/index.ts', out: 'dist' },
  { entry: 'src/cli/index.ts', out: 'dist/cli' },
  { entry: 'src/post-index.ts', out: 'dist/post' },
  { entry: 'src/digest/digest-worker.ts', out: workerBuild }
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
for (const out of ['dist', 'dist/cli'])
  copyFileSync(`${workerBuild}/index.js`, `${out}/digest-worker.js`)
rmSync(workerBuild, { recursive: true })
writeFileSync('dist/package.json', JSON.stringify({ type: 'module' }, null, 2) + '\n')
chmodSync('dist/cli/index.js', 0o755)
