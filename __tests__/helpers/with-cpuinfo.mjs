// `unshare --mount -- node with-cpuinfo.mjs CPUINFO SCRIPT [ARGS…]`: in the new mount namespace,
// shows CPUINFO as /proc/cpuinfo, then runs `node SCRIPT ARGS…` with this environment (a shell
// would drop the runner's INPUT_PUBLIC-KEY: a name with a hyphen) and exits with its code.
import { execFileSync, spawnSync } from 'node:child_process'

const [cpuInfo, script, ...args] = process.argv.slice(2)
execFileSync('mount', ['--make-rprivate', '/'])
execFileSync('mount', ['--bind', cpuInfo, '/proc/cpuinfo'])
const child = spawnSync(process.execPath, [script, ...args], { stdio: 'inherit' })
process.exit(child.status ?? 1)
