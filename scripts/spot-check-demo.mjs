// npm run demo:segments — a segmented PyTorch training (examples/torch-cnn, 8 segments) published
// with the CLI (ledger init --segments, build --states, transcript sign) and verified three ways:
// a full rebuild of the one-run ledger, all 8 segments re-run, and a spot check of k = 3 random
// segments; then a forged state is caught. Prints the times, their ratios and the escape chances
// the report gives. Runs the committed CLI bundle (dist/cli/index.js: `npm run package` first).
// Outputs go to $SEGMENTS_DEMO_OUT (default segments-demo-out/); results to results.json there.
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const out = path.resolve(process.env.SEGMENTS_DEMO_OUT ?? path.join(root, 'segments-demo-out'))
const cli = path.join(root, 'dist/cli/index.js')
const example = path.join(root, 'examples/torch-cnn')
const SEGMENTS = 8
const K = 3
const EPOCHS = process.env.EPOCHS ?? '8'
const COMMIT_DATE = '2024-01-01T00:00:00Z'

/** A program run with an argv array (never a shell); stderr streams through. */
function run(file, args, options = {}) {
  return execFileSync(file, args, {
    cwd: out,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
    ...options
  }).trim()
}
const verifyModel = (...args) => run(process.execPath, [cli, ...args])

/** `verify` with its JSON report; a failing verdict (exit 1) is a result here, not an error. */
function verifyTimed(label, args) {
  const started = Date.now()
  const result = spawnSync(process.execPath, [cli, 'verify', ...args, '--json'], {
    cwd: out,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024
  })
  const seconds = (Date.now() - started) / 1000
  const report = JSON.parse(result.stdout)
  console.log(`${label}: ${report.result} in ${seconds.toFixed(1)} s — ${report.reason}`)
  return { seconds, report }
}

rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
process.chdir(out)
console.log(`── trainer image and data set`)
const image = run('bash', [path.join(root, 'scripts/build-trainer-image.sh'), 'torch-cnn'])
  .split('\n')
  .pop()
run('python3', [path.join(example, 'make_dataset.py'), 'data'])

console.log(`── the publisher: a git repository of examples/torch-cnn, one key`)
cpSync(example, path.join(out, 'source'), { recursive: true })
const git = args =>
  run(
    'git',
    ['-C', 'source', '-c', 'user.name=demo', '-c', 'user.email=demo@example.org', ...args],
    {
      env: { ...process.env, GIT_AUTHOR_DATE: COMMIT_DATE, GIT_COMMITTER_DATE: COMMIT_DATE }
    }
  )
git(['init', '-q', '-b', 'main'])
git(['add', '-A'])
git(['commit', '-q', '-m', 'torch-cnn'])
verifyModel('keygen', '--out', 'publisher')

const ledger = (name, extra) => {
  verifyModel(
    'ledger',
    'init',
    '--source-dir',
    'source',
    '--image',
    image,
    '--dataset',
    'data',
    '--dependency',
    'requirements.lock',
    '--output',
    'model.safetensors',
    '--output',
    'config.json',
    '--env',
    `EPOCHS=${EPOCHS}`,
    '--isa',
    'x86-64-v3',
    ...extra,
    '-o',
    `${name}.statement.json`,
    '--',
    'python3',
    'train.py',
    '--data',
    '/data',
    '--out',
    '/out'
  )
  verifyModel('sign', `${name}.statement.json`, '--key', 'publisher.key', '-o', `${name}.sba.json`)
}
ledger('one-run', [])
ledger('segmented', ['--segments', String(SEGMENTS)])

console.log(`── build: one run, then ${SEGMENTS} segments (each resumes from the last state)`)
let started = Date.now()
const oneRunRoot = verifyModel(
  'build',
  'one-run.statement.json',
  '--dataset',
  'data',
  '--out',
  'one-run-model'
)
const oneRunBuildSeconds = (Date.now() - started) / 1000
started = Date.now()
const built = JSON.parse(
  verifyModel(
    'build',
    'segmented.sba.json',
    '--public-key',
    'publisher.pub',
    '--dataset',
    'data',
    '--states',
    'states',
    '--out',
    'model',
    '--json'
  )
)
const segmentedBuildSeconds = (Date.now() - started) / 1000
console.log(`one-run model root   ${oneRunRoot} (${oneRunBuildSeconds.toFixed(1)} s)`)
console.log(`segmented model root ${built.root} (${segmentedBuildSeconds.toFixed(1)} s)`)
if (built.root !== oneRunRoot) throw new Error('the segmented model differs from the one-run model')
// `build` keeps the one run's whole /out (its state files too); `model` holds only the declared
// outputs, the same bytes: the one-run ledger is verified against it below.
verifyModel(
  'transcript',
  'sign',
  '--sba',
  'segmented.sba.json',
  '--states',
  'states',
  '--key',
  'publisher.key',
  '--state-uri',
  'states/state-{i}.tar',
  '-o',
  'transcript.json'
)

console.log(`── the verifier`)
const trust = ['--public-key', 'publisher.pub', '--dataset', 'data']
const full = verifyTimed('full rebuild (one-run ledger)', [
  '--sba',
  'one-run.sba.json',
  '--model',
  'model',
  ...trust
])
const all = verifyTimed(`all ${SEGMENTS} segments re-run`, [
  '--sba',
  'segmented.sba.json',
  '--model',
  'model',
  '--transcript',
  'transcript.json',
  '--segments',
  'all',
  ...trust
])
const spot = verifyTimed(`spot check, k = ${K}`, [
  '--sba',
  'segmented.sba.json',
  '--model',
  'model',
  '--transcript',
  'transcript.json',
  '--segments',
  String(K),
  ...trust
])

console.log(`── a forger replaces state 5 (perturbed weights) and signs its root`)
cpSync('states', 'forged-states', { recursive: true })
mkdirSync('state-5')
run('tar', ['-xf', 'forged-states/state-5.tar', '-C', 'state-5'])
const weights = readFileSync(path.join(out, 'state-5/model.safetensors'))
weights[weights.length - 1] ^= 0x01
writeFileSync(path.join(out, 'state-5/model.safetensors'), weights)
rmSync(path.join(out, 'forged-states/state-5.tar'))
run('tar', [
  '--sort=name',
  '--owner=0',
  '--group=0',
  '--numeric-owner',
  '--mtime=@0',
  '-cf',
  'forged-states/state-5.tar',
  '-C',
  'state-5',
  '.'
])
mkdirSync('forged', { recursive: true })
cpSync('forged-states', path.join(out, 'forged/states'), { recursive: true })
verifyModel(
  'transcript',
  'sign',
  '--sba',
  'segmented.sba.json',
  '--states',
  'forged/states',
  '--key',
  'publisher.key',
  '--state-uri',
  'states/state-{i}.tar',
  '-o',
  'forged/transcript.json'
)
const caught = verifyTimed('spot check of segment 5 on the forged transcript', [
  '--sba',
  'segmented.sba.json',
  '--model',
  'model',
  '--transcript',
  'forged/transcript.json',
  '--segments',
  '5,',
  ...trust
])
const missed = verifyTimed('spot check of segments 1,2,3 on the forged transcript', [
  '--sba',
  'segmented.sba.json',
  '--model',
  'model',
  '--transcript',
  'forged/transcript.json',
  '--segments',
  '1,2,3',
  ...trust
])

const escape = spot.report.segments.escape
const results = {
  cpu: run('sh', ['-c', "lscpu | sed -n 's/^Model name: *//p'"]),
  epochs: Number(EPOCHS),
  segments: SEGMENTS,
  k: K,
  seconds: {
    oneRunBuild: oneRunBuildSeconds,
    segmentedBuild: segmentedBuildSeconds,
    fullRebuild: full.seconds,
    allSegments: all.seconds,
    spotCheck: spot.seconds
  },
  results: {
    full: full.report.result,
    all: all.report.result,
    spot: spot.report.result,
    forgedCaught: caught.report.result,
    forgedMissed: missed.report.result
  },
  drawn: spot.report.segments.indices,
  escape,
  caughtReason: caught.report.reason
}
writeFileSync(path.join(out, 'results.json'), JSON.stringify(results, null, 2) + '\n')
console.log(`\n── results (${results.cpu})`)
console.log(
  `spot check k=${K} of ${SEGMENTS}: ${spot.seconds.toFixed(1)} s = ${(spot.seconds / full.seconds).toFixed(2)} of the full rebuild (${full.seconds.toFixed(1)} s), ${(spot.seconds / all.seconds).toFixed(2)} of all segments (${all.seconds.toFixed(1)} s); ${K}/${SEGMENTS} = ${(K / SEGMENTS).toFixed(3)}`
)
console.log(
  `escape chances: ${escape.map(e => `${e.forged} forged: ${(e.probability * 100).toFixed(1)} %`).join(', ')}`
)
console.log(
  `forged state 5: segment 5 re-run → ${caught.report.result}; segments 1,2,3 → ${missed.report.result}`
)
