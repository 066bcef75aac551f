// `unshare --mount -- node with-cpuinfo.mjs CPUINFO SCRIPT`: in the new mount namespace, shows
// CPUINFO as /proc/cpuinfo, then runs `node SCRIPT` with this environment (a shell would drop
// the runner's INPUT_PUBLIC-KEY: a name with a hyphen) and exits with its code.
import { execFileSync, spawnSync } from 'node:child_process'

const [cpuInfo, script] = process.argv.slice(2)
execFileSync('mount', ['--make-rprivate', '/'])
execFileSync('mount', ['--bind', cpuInfo, '/proc/cpuinfo'])
const child = spawnSync(process.execPath, [script], { stdio: 'inherit' })
process.exit(child.status ?? 1)
