// npm run demo: the whole protocol on a real (tiny) training, publisher side and verifier side,
// including a caught tampering, the SBA published to a transparency log and witnessed, and a
// monitor catching a signature the publisher never made. `npm run demo -- --torch` adds the
// PyTorch example: a CNN published with build.isa x86-64-v3 that `build --cross-check` finds
// portable to an emulated CPU of the other vendor (Haswell on AMD, EPYC on Intel), the same
// training unpinned that it finds not portable, and the action verifying the pinned one.
// Everything runs through the committed bundles (dist/), the way users and the GitHub runner do.
// Outputs go to demo-out/ (or $DEMO_OUT); the outcomes are also written to
// demo-out/demo-results.json for the test that runs this script in CI.
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const out = path.resolve(process.env.DEMO_OUT ?? path.join(root, 'demo-out'))
const work = path.join(out, 'work')
const publish = path.join(out, 'publish')
const cli = path.join(root, 'dist/cli/index.js')
const action = path.join(root, 'dist/index.js')
const COMMIT_DATE = '2024-01-01T00:00:00Z'
const OUTPUTS = ['W1.npy', 'b1.npy', 'W2.npy', 'b2.npy', 'model.safetensors', 'config.json']
const TORCH_OUTPUTS = ['model.safetensors', 'config.json']
const withTorch = process.argv.slice(2).includes('--torch')

const timings = []
const bold = text => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text)

async function phase(name, fn) {
  console.log(`\n${bold(`── ${name}`)}`)
  const started = Date.now()
  const result = await fn()
  timings.push([name, (Date.now() - started) / 1000])
  return result
}

/** Runs a program with an argv array (never a shell); its stderr streams to ours. */
function run(file, args, options = {}) {
  const stdout = execFileSync(file, args, {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    ...options
  })
  return (stdout ?? '').trim()
}

function verifyModelCli(...args) {
  return run(process.execPath, [cli, ...args])
}

/** The CLI where a failing exit code is an outcome to show (cross-check: 1 = not portable). */
function verifyModelCliStatus(...args) {
  const result = spawnSync(process.execPath, [cli, ...args], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit']
  })
  return { status: result.status, stdout: result.stdout.trim() }
}

/** Runs dist/index.js exactly as the runner does: INPUT_* variables and the file commands. */
function runAction(name, inputs) {
  const dir = path.join(out, 'runs', name)
  mkdirSync(path.join(dir, 'temp'), { recursive: true })
  const files = { output: path.join(dir, 'github-output'), summary: path.join(dir, 'summary.html') }
  for (const file of Object.values(files)) writeFileSync(file, '')
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^(INPUT_|GITHUB_)/.test(key))
  )
  for (const [input, value] of Object.entries(inputs)) env[`INPUT_${input.toUpperCase()}`] = value
  Object.assign(env, {
    GITHUB_ACTIONS: 'true',
    GITHUB_OUTPUT: files.output,
    GITHUB_STEP_SUMMARY: files.summary,
    RUNNER_TEMP: path.join(dir, 'temp'),
    RUNNER_TOOL_CACHE: path.join(dir, 'tool-cache')
  })
  const result = spawnSync(process.execPath, [action], { cwd: root, env, encoding: 'utf8' })
  writeFileSync(path.join(dir, 'log.txt'), result.stdout + result.stderr)
  const outputs = parseGithubOutput(readFileSync(files.output, 'utf8'))
  const report = outputs.report ? JSON.parse(readFileSync(outputs.report, 'utf8')) : undefined
  return {
    exitCode: result.status,
    outputs,
    report,
    summaryFile: files.summary,
    logFile: path.join(dir, 'log.txt')
  }
}

function parseGithubOutput(text) {
  const outputs = {}
  const pattern = /^([^<\n]+)<<(\S+)\n([\s\S]*?)\n\2$/gm
  for (const match of text.matchAll(pattern)) outputs[match[1]] = match[3]
  return outputs
}

/** The job summary is HTML for GitHub; this shows it readably in a terminal. */
function renderSummary(html) {
  return html
    .replace(/<h1>(.*?)<\/h1>/g, (_, t) => bold(t.toUpperCase()))
    .replace(/<h2>(.*?)<\/h2>/g, (_, t) => `\n${bold(t)}`)
    .replace(/<tr>/g, '  ')
    .replace(/<\/t[dh]><t[dh]>/g, ' │ ')
    .replace(/<summary>(.*?)<\/summary>/g, '$1:')
    .replace(/<[^>]+>/g, '')
    .replace(/&#(\d+);/g, (_, code) => String.fromCharCode(Number(code)))
    .replace(/\n{3,}/g, '\n\n')
    .trim()
}

/** Adds 0.5 to one float32 element at a byte offset of a file. */
function addToFloat(file, at) {
  const bytes = readFileSync(file)
  bytes.writeFloatLE(bytes.readFloatLE(at) + 0.5, at)
  writeFileSync(file, bytes)
}

/** The same weight in both published forms: W2.npy (version 1 header) and model.safetensors. */
function changeOneWeight(modelDir, index) {
  const npy = path.join(modelDir, 'W2.npy')
  addToFloat(npy, 10 + readFileSync(npy).readUInt16LE(8) + index * 4)
  const safetensors = path.join(modelDir, 'model.safetensors')
  const bytes = readFileSync(safetensors)
  const headerLength = Number(bytes.readBigUInt64LE(0))
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'))
  addToFloat(safetensors, 8 + headerLength + header.W2.data_offsets[0] + index * 4)
}

function git(cwd, ...args) {
  return run(
    'git',
    ['-c', 'user.name=Tiny Model', '-c', 'user.email=tiny-model@example.org', ...args],
    {
      cwd,
      env: { ...process.env, GIT_AUTHOR_DATE: COMMIT_DATE, GIT_COMMITTER_DATE: COMMIT_DATE }
    }
  )
}

function expectOutcome(name, actual, expected) {
  const ok = actual === expected
  console.log(`${ok ? '✔' : '✘'} ${name}: ${actual}${ok ? '' : ` (expected ${expected})`}`)
  return ok
}

/** A copy of an example as a git repository pinning the lock of the image actually built. */
function commitExample(name, lockArgs, message) {
  const source = path.join(work, name)
  cpSync(path.join(root, 'examples', name), source, {
    recursive: true,
    filter: file => !file.includes('__pycache__')
  })
  // The ledger pins the lock of the image actually built (equal to the committed one unless
  // the Debian mirror moved on since; build-trainer-image.sh warns then).
  const lock =
    run('bash', [path.join(root, 'scripts/build-trainer-image.sh'), ...lockArgs, '--print-lock']) +
    '\n'
  writeFileSync(path.join(source, 'requirements.lock'), lock)
  run('git', ['init', '-q', '-b', 'main', source])
  git(source, 'add', '-A')
  git(source, 'commit', '-q', '-m', message)
  return { source, commit: git(source, 'rev-parse', 'HEAD') }
}

/**
 * The PyTorch example: its image, one pinned and one unpinned ledger, each built with
 * `--cross-check` (the same build again under qemu-user as an Intel CPU of the level), and the
 * action verifying the pinned one.
 */
async function torchDemo() {
  const dir = path.join(out, 'torch')
  mkdirSync(dir, { recursive: true })
  const image = await phase(
    'PyTorch trainer image (Debian bookworm + python3-torch 1.13.1, pinned by digest)',
    () => {
      const reference = run('bash', [
        path.join(root, 'scripts/build-trainer-image.sh'),
        'torch-cnn'
      ])
        .split('\n')
        .pop()
      console.log(`image ${reference}`)
      return reference
    }
  )
  const { source, dataset } = await phase('PyTorch: source repository and dataset', () => {
    const { source, commit } = commitExample(
      'torch-cnn',
      ['torch-cnn'],
      'torch-cnn: a small CNN, deterministic and resumable in segments'
    )
    const dataset = path.join(work, 'torch-dataset')
    run('python3', [path.join(source, 'make_dataset.py'), dataset])
    console.log(`source commit ${commit}\ndataset root  ${verifyModelCli('digest', dataset)}`)
    return { source, dataset }
  })
  const keyPrefix = path.join(dir, 'publisher')
  verifyModelCli('keygen', '--out', keyPrefix)

  const publishWithCrossCheck = (name, isa) => {
    const statement = path.join(dir, `${name}.statement.json`)
    verifyModelCli(
      'ledger',
      'init',
      '--source-dir',
      source,
      '--image',
      image,
      '--dataset',
      dataset,
      '--dependency',
      'requirements.lock',
      ...TORCH_OUTPUTS.flatMap(output => ['--output', output]),
      '--env',
      'EPOCHS=1',
      '--isa',
      isa,
      '-o',
      statement,
      '--',
      'python3',
      'train.py',
      '--data',
      '/data',
      '--out',
      '/out'
    )
    const model = path.join(dir, `${name}-model`)
    const checked = verifyModelCliStatus(
      'build',
      statement,
      '--dataset',
      dataset,
      '--out',
      model,
      '--cross-check'
    )
    console.log(checked.stdout)
    // What the publisher uploads: the declared outputs, not the training state beside them.
    const published = path.join(dir, `${name}-published`)
    mkdirSync(published)
    for (const output of TORCH_OUTPUTS)
      cpSync(path.join(model, output), path.join(published, output))
    const verdict = /^(portable|not portable):/m.exec(checked.stdout)?.[1] ?? 'failed'
    return { statement, model: published, verdict, exitCode: checked.status }
  }

  const pinned = await phase(
    'PyTorch publisher: ledger init --isa x86-64-v3, build --cross-check (native, then as an x86-64-v3 CPU of the other vendor under qemu)',
    () => publishWithCrossCheck('pinned', 'x86-64-v3')
  )
  const unpinned = await phase(
    'PyTorch publisher: the same training unpinned (--isa none), build --cross-check',
    () => publishWithCrossCheck('unpinned', 'none')
  )
  const sba = path.join(dir, 'torch-cnn.sba.json')
  verifyModelCli('sign', pinned.statement, '--key', `${keyPrefix}.key`, '-o', sba)
  const verified = await phase('PyTorch verifier: the action on the pinned model', () => {
    const run = runAction('torch-verify', {
      attestation: sba,
      'public-key': readFileSync(`${keyPrefix}.pub`, 'utf8'),
      model: pinned.model,
      dataset
    })
    console.log(`result      ${run.outputs.result}\ncapability  ${run.outputs.capability}`)
    return run
  })
  return {
    image,
    pinned: { verdict: pinned.verdict, exitCode: pinned.exitCode },
    unpinned: { verdict: unpinned.verdict, exitCode: unpinned.exitCode },
    verified: { result: verified.outputs.result, capability: verified.outputs.capability }
  }
}

async function main() {
  if (!existsSync(cli) || !existsSync(action))
    throw new Error('dist/ is missing: run npm run package')
  rmSync(out, { recursive: true, force: true })
  mkdirSync(publish, { recursive: true })

  await phase('services: Docker and a registry on 127.0.0.1:5000', () =>
    run('bash', [path.join(root, 'scripts/services.sh'), 'up'], {
      stdio: ['ignore', 'inherit', 'inherit']
    })
  )
  const image = await phase(
    'trainer image (Debian bookworm + python3-numpy, pinned by digest)',
    () => {
      const reference = run('bash', [path.join(root, 'scripts/build-trainer-image.sh')])
        .split('\n')
        .pop()
      console.log(`image ${reference}`)
      return reference
    }
  )

  const { source, dataset, commit } = await phase('source repository and dataset', () => {
    const { source, commit } = commitExample(
      'tiny-model',
      [],
      'tiny-model: train a small MLP on the spiral data set'
    )
    const dataset = path.join(work, 'dataset')
    run('python3', [path.join(source, 'make_dataset.py'), dataset])
    console.log(`source commit ${commit}\ndataset root  ${verifyModelCli('digest', dataset)}`)
    return { source, dataset, commit }
  })

  const sba = path.join(publish, 'tiny-model.sba.json')
  const model = path.join(publish, 'model')
  const keyPrefix = path.join(publish, 'publisher')
  await phase('publisher: keygen, ledger init, build (trains the model), sign', () => {
    console.log(`key id ${verifyModelCli('keygen', '--out', keyPrefix)}`)
    const statement = path.join(publish, 'statement.json')
    verifyModelCli(
      'ledger',
      'init',
      '--source-dir',
      source,
      '--image',
      image,
      '--dataset',
      dataset,
      '--dependency',
      'requirements.lock',
      ...OUTPUTS.flatMap(name => ['--output', name]),
      '--env',
      'SEED=0',
      '-o',
      statement,
      '--',
      'python3',
      'train.py',
      '--data',
      '/data',
      '--out',
      '/out'
    )
    console.log(
      `model root ${verifyModelCli('build', statement, '--dataset', dataset, '--out', model)}`
    )
    verifyModelCli('sign', statement, '--key', `${keyPrefix}.key`, '-o', sba)
    console.log(`signed ${path.relative(root, sba)}`)
  })

  const logDir = path.join(publish, 'log')
  const proof = path.join(publish, 'tiny-model.tlog-proof')
  const log = await phase(
    'transparency log: init, append the SBA, a witness cosigns, prove (static files)',
    () => {
      const logKeyPrefix = path.join(publish, 'log-key')
      const witnessPrefix = path.join(publish, 'witness')
      verifyModelCli('keygen', '--out', logKeyPrefix)
      verifyModelCli('keygen', '--out', witnessPrefix)
      const logKey = verifyModelCli(
        'log',
        'init',
        '--dir',
        logDir,
        '--origin',
        'demo.example/tiny-model-log',
        '--key',
        `${logKeyPrefix}.key`
      )
      console.log(`log key     ${logKey}`)
      console.log(
        verifyModelCli(
          'log',
          'append',
          sba,
          '--dir',
          logDir,
          '--key',
          `${logKeyPrefix}.key`,
          '--public-key',
          `${keyPrefix}.pub`
        )
      )
      const cosigned = verifyModelCli(
        'log',
        'cosign',
        '--dir',
        logDir,
        '--log-key',
        logKey,
        '--key',
        `${witnessPrefix}.key`,
        '--name',
        'witness.demo.example/w1',
        '--state',
        path.join(publish, 'witness-state.json')
      )
      console.log(cosigned)
      const witnessKey = cosigned
        .split('\n')
        .find(line => line.startsWith('witness-key '))
        .slice(12)
      verifyModelCli(
        'log',
        'prove',
        sba,
        '--dir',
        logDir,
        '--public-key',
        `${keyPrefix}.pub`,
        '-o',
        proof
      )
      console.log(`proof       ${path.relative(root, proof)}`)
      return { logKey, logKeyFile: `${logKeyPrefix}.key`, witnessKey }
    }
  )

  const publicKey = readFileSync(`${keyPrefix}.pub`, 'utf8')
  const inputs = {
    attestation: sba,
    'public-key': publicKey,
    dataset,
    'log-proof': proof,
    'log-key': log.logKey,
    'witness-keys': log.witnessKey,
    'witness-threshold': '1'
  }

  const verified = await phase(
    'verifier: the action in verify mode, on the published weights',
    () => {
      const run = runAction('verify', { ...inputs, model })
      console.log(`result      ${run.outputs.result}\ncapability  ${run.outputs.capability}`)
      console.log(`job summary ${path.relative(root, run.summaryFile)}\n`)
      console.log(renderSummary(readFileSync(run.summaryFile, 'utf8')))
      return run
    }
  )
  const recomputed = verifyModelCli(
    'capability',
    '--sba',
    sba,
    '--public-key',
    `${keyPrefix}.pub`,
    '--model',
    model
  )

  const tampered = await phase(
    'tampering: one weight of W2 changed by 0.5 (W2.npy and model.safetensors)',
    () => {
      const copy = path.join(out, 'tampered', 'model')
      cpSync(model, copy, { recursive: true })
      changeOneWeight(copy, 7)
      const run = runAction('tampered-model', { ...inputs, model: copy })
      console.log(`result ${run.outputs.result}`)
      for (const lines of Object.values(run.report.explanations ?? {})) {
        for (const line of lines) console.log(`  ${line}`)
      }
      return run
    }
  )

  const swapped = await phase('tampering: a modified dataset', () => {
    const copy = path.join(out, 'tampered', 'dataset')
    cpSync(dataset, copy, { recursive: true })
    const train = path.join(copy, 'train.csv')
    const lines = readFileSync(train, 'utf8').split('\n')
    lines[1] = lines[1].replace(/,(\d+)$/, (_, label) => `,${(Number(label) + 1) % 2}`)
    writeFileSync(train, lines.join('\n'))
    const run = runAction('tampered-dataset', { ...inputs, model, dataset: copy })
    console.log(`result ${run.outputs.result}: ${run.report.reason}`)
    return run
  })

  const monitor = await phase(
    'monitor: a signature made with the stolen publisher key is logged and caught',
    () => {
      const published = JSON.parse(
        verifyModelCli('verify-sba', sba, '--public-key', `${keyPrefix}.pub`, '--json')
      ).attestationDigest
      const known = path.join(publish, 'published-attestations.txt')
      writeFileSync(known, `${published}\n`)
      const forged = path.join(out, 'stolen-key.sba.json')
      const statement = JSON.parse(readFileSync(path.join(publish, 'statement.json'), 'utf8'))
      statement.predicate.build.env.SEED = '1'
      writeFileSync(path.join(out, 'stolen-statement.json'), JSON.stringify(statement))
      verifyModelCli(
        'sign',
        path.join(out, 'stolen-statement.json'),
        '--key',
        `${keyPrefix}.key`,
        '-o',
        forged
      )
      verifyModelCli(
        'log',
        'append',
        forged,
        '--dir',
        logDir,
        '--key',
        log.logKeyFile,
        '--public-key',
        `${keyPrefix}.pub`
      )
      const result = spawnSync(
        process.execPath,
        [
          cli,
          'log',
          'monitor',
          '--dir',
          logDir,
          '--log-key',
          log.logKey,
          '--public-key',
          `${keyPrefix}.pub`,
          '--known',
          known,
          '--json'
        ],
        { cwd: root, encoding: 'utf8' }
      )
      const report = JSON.parse(result.stdout)
      for (const entry of report.entries) {
        console.log(
          `${entry.known ? 'known  ' : 'UNKNOWN'} entry ${entry.index} ${entry.attestationDigest}`
        )
      }
      return { exitCode: result.status, unknown: report.unknown }
    }
  )

  const torch = withTorch ? await torchDemo() : undefined

  console.log(`\n${bold('── outcomes')}`)
  const ok = [
    expectOutcome('published weights', verified.outputs.result, 'verified'),
    expectOutcome('logged and witnessed: log index', verified.outputs['log-index'], '0'),
    expectOutcome('monitor exit code on the stolen-key signature', String(monitor.exitCode), '1'),
    expectOutcome(
      'capability recomputed by `verify-model capability`',
      recomputed,
      verified.outputs.capability
    ),
    expectOutcome('one weight changed', tampered.outputs.result, 'mismatch'),
    expectOutcome('dataset swapped', swapped.outputs.result, 'invalid'),
    expectOutcome(
      'dataset swap stopped before any build',
      String(swapped.report.build === undefined),
      'true'
    ),
    ...(torch
      ? [
          expectOutcome(
            'PyTorch, build.isa x86-64-v3: cross-check',
            torch.pinned.verdict,
            'portable'
          ),
          expectOutcome('PyTorch, unpinned: cross-check', torch.unpinned.verdict, 'not portable'),
          expectOutcome(
            'PyTorch, build.isa x86-64-v3: the action',
            torch.verified.result,
            'verified'
          )
        ]
      : [])
  ].every(Boolean)

  console.log(`\n${bold('── time per phase')}`)
  for (const [name, seconds] of timings) console.log(`${seconds.toFixed(1).padStart(7)} s  ${name}`)
  const total = timings.reduce((sum, [, seconds]) => sum + seconds, 0)
  console.log(`${total.toFixed(1).padStart(7)} s  total`)

  writeFileSync(
    path.join(out, 'demo-results.json'),
    JSON.stringify(
      {
        ok,
        image,
        commit,
        sba,
        model,
        publicKey: `${keyPrefix}.pub`,
        verified: {
          result: verified.outputs.result,
          capability: verified.outputs.capability,
          logIndex: verified.outputs['log-index'],
          logOrigin: verified.outputs['log-origin']
        },
        log: { dir: logDir, proof, logKey: log.logKey, witnessKey: log.witnessKey },
        monitor,
        recomputedCapability: recomputed,
        tampered: { result: tampered.outputs.result, explanations: tampered.report.explanations },
        datasetSwap: {
          result: swapped.outputs.result,
          reason: swapped.report.reason,
          built: swapped.report.build !== undefined
        },
        ...(torch ? { torch } : {}),
        timings: Object.fromEntries(timings),
        totalSeconds: total
      },
      null,
      2
    ) + '\n'
  )
  process.exitCode = ok ? 0 : 1
}

main().catch(error => {
  console.error(`demo failed: ${error.message}`)
  process.exitCode = 1
})
