#!/usr/bin/env node
// Tree-digest benchmark (issue 5): our CLI against OpenSSL and coreutils on the same files.
//
//   npm run bench -- [--scale 1] [--runs 5] [--sets large,single,small,dataset,startup]
//                    [--read-sizes 64K,128K,256K,512K,1M] [--small-files 20000]
//                    [--dataset-files 100000] [--dataset-file-size 64K]
//                    [--ours "node dist/cli/index.js digest"] [--dir /tmp] [--keep]
//
// Generates the data sets under a temporary directory, warms the page cache, checks that every
// tool reports the same SHA-256 for every file, then times the tools alternately and prints
// median times, throughput, our ratio against each baseline (higher is better for us) and our
// peak RSS. `--read-sizes` adds one row of ours per read size (VERIFY_MODEL_READ_SIZE), next
// to ours at the read size the engine chooses from the CPU's L2 cache, which is printed with
// the cache sizes. Writes the same to bench/results.json. Commands are argv arrays, never a
// shell, except the baselines that are themselves the pipelines issue 5 names.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values: args } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    runs: { type: 'string', default: '5' },
    sets: { type: 'string', default: 'large,single,small,dataset,startup' },
    'read-sizes': { type: 'string', default: '' },
    'small-files': { type: 'string' },
    'dataset-files': { type: 'string' },
    'dataset-file-size': { type: 'string', default: '64K' },
    ours: { type: 'string', default: 'node dist/cli/index.js digest' },
    dir: { type: 'string', default: os.tmpdir() },
    keep: { type: 'boolean', default: false }
  }
})
const bytesOf = text => {
  const match = /^(\d+)([KMG]?)$/i.exec(text.trim())
  if (!match) throw new Error(`not a size: ${text} (write 64K, 1M, 65536)`)
  return Number(match[1]) * { '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 }[match[2].toUpperCase()]
}
const scale = Number(args.scale)
const runs = Number(args.runs)
const ours = args.ours.split(/\s+/).filter(Boolean)
const readSizes = args['read-sizes'].split(',').filter(Boolean).map(bytesOf)
const smallFiles = Number(args['small-files'] ?? Math.max(1, Math.round(20000 * scale)))
const datasetFiles = Number(args['dataset-files'] ?? Math.max(1, Math.round(100000 * scale)))
const datasetFileSize = bytesOf(args['dataset-file-size'])
const cpus = os.availableParallelism()
const MiB = 1 << 20
const GiB = 1 << 30
const timeBinary = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined

/** Runs argv: wall seconds, stdout and, with /usr/bin/time, peak RSS (MiB) and CPU seconds. */
function run(argv, { capture = false, env } = {}) {
  const wrapped = timeBinary ? [timeBinary, '-f', '%M %U %S', ...argv] : argv
  const started = process.hrtime.bigint()
  const result = spawnSync(wrapped[0], wrapped.slice(1), {
    cwd: repo,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    stdio: ['ignore', capture ? 'pipe' : 'ignore', 'pipe']
  })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  if (result.status !== 0)
    throw new Error(`${argv.join(' ')} exited ${result.status}: ${result.stderr.slice(-2000)}`)
  const [rssKb, user, system] = timeBinary
    ? result.stderr.trim().split('\n').at(-1).split(' ').map(Number)
    : [NaN, NaN, NaN]
  return { seconds, stdout: result.stdout ?? '', rssMiB: rssKb / 1024, cpuSeconds: user + system }
}

const sh = script => ['sh', '-c', script]
const quote = s => `'${s.replaceAll("'", `'\\''`)}'`

// ---- data sets ------------------------------------------------------------------------------

function writeFilled(file, size, block) {
  const fd = fs.openSync(file, 'w')
  try {
    for (let done = 0; done < size;) {
      const n = Math.min(block.length, size - done)
      fs.writeSync(fd, block, 0, n)
      done += n
    }
  } finally {
    fs.closeSync(fd)
  }
}

function generate(root, set) {
  // Content does not change SHA-256 speed; every file starts with distinct random bytes so no
  // two digests are equal.
  const block = randomBytes(16 * MiB)
  const distinct = () => randomBytes(64).copy(block)
  if (set === 'large') {
    const dir = path.join(root, 'large')
    fs.mkdirSync(dir)
    const size = Math.round(512 * MiB * scale)
    for (let i = 0; i < 4; i++) {
      distinct()
      writeFilled(path.join(dir, `shard-${i}.bin`), size, block)
    }
    return { target: dir, files: 4, bytes: 4 * size }
  }
  if (set === 'single') {
    const file = path.join(root, 'single.bin')
    const size = Math.round(2 * GiB * scale)
    distinct()
    writeFilled(file, size, block)
    return { target: file, files: 1, bytes: size }
  }
  if (set === 'small') {
    const dir = path.join(root, 'small')
    const count = smallFiles
    for (let i = 0; i < count; i++) {
      const sub = path.join(dir, `d${i % 20}`, `e${Math.floor(i / 20) % 20}`)
      if (i < 400) fs.mkdirSync(sub, { recursive: true })
      fs.writeFileSync(path.join(sub, `f${i}.bin`), randomBytes(4096))
    }
    return { target: dir, files: count, bytes: count * 4096 }
  }
  if (set === 'dataset') {
    // Like an image or shard dataset: 1,000 files per directory, each starting with its index.
    const dir = path.join(root, 'dataset')
    const size = datasetFileSize
    const count = datasetFiles
    for (let i = 0; i < count; i++) {
      const sub = path.join(dir, `part-${String(Math.floor(i / 1000)).padStart(3, '0')}`)
      if (i % 1000 === 0) fs.mkdirSync(sub, { recursive: true })
      const offset = (i * 4099) % (block.length - size - 8)
      const content = block.subarray(offset, offset + size)
      content.writeUInt32BE(i, 0)
      fs.writeFileSync(path.join(sub, `sample-${i}.bin`), content)
    }
    return { target: dir, files: count, bytes: count * size }
  }
  if (set === 'startup') {
    const file = path.join(root, 'tiny.json')
    fs.writeFileSync(file, '{"hello":"world"}\n')
    return { target: file, files: 1, bytes: 18 }
  }
  throw new Error(`unknown set ${set}`)
}

// ---- tools ----------------------------------------------------------------------------------

/** Each tool: argv to time, and argv whose output lists per-file digests (to cross-check). */
function toolsFor(set, data) {
  const target = data.target
  const oursTool = (readSize, name = 'verify-model digest') => ({
    name: readSize ? `${name}, read ${kib(readSize)}` : name,
    ours: true,
    readSize,
    env: readSize ? { VERIFY_MODEL_READ_SIZE: String(readSize) } : undefined,
    argv: [...ours, target],
    check: [...ours, target, '--json'],
    parse: out => parseOurs(out, target)
  })
  const oursTools = [oursTool(), ...readSizes.map(size => oursTool(size))]
  const findXargs = tail => sh(`find ${quote(target)} -type f -print0 | xargs -0 ${tail}`)
  const coreutils = out => parseLines(out, /^([0-9a-f]{64}) [ *](.+)$/, 2, 1)
  const openssl = out => parseLines(out, /^SHA2?-?256\((.+)\)= ([0-9a-f]{64})$/, 1, 2)
  if (set === 'large') {
    return [
      ...oursTools,
      {
        name: `openssl dgst, xargs -P${cpus}`,
        argv: findXargs(`-P${cpus} -n1 openssl dgst -sha256`),
        parse: openssl
      },
      { name: 'sha256sum', argv: sh(`sha256sum ${quote(target)}/*`), parse: coreutils },
      {
        name: `sha256sum, xargs -P${cpus}`,
        argv: findXargs(`-P${cpus} -n1 sha256sum`),
        parse: coreutils
      }
    ]
  }
  if (set === 'single') {
    return [
      ...oursTools,
      { name: 'openssl dgst', argv: ['openssl', 'dgst', '-sha256', target], parse: openssl },
      { name: 'sha256sum', argv: ['sha256sum', target], parse: coreutils }
    ]
  }
  if (set === 'small' || set === 'dataset') {
    // Many files per process: parallel processes interleave their output lines, so the
    // digests are cross-checked from a serial run of the same tool.
    return [
      ...oursTools,
      {
        name: `sha256sum, xargs -P${cpus}`,
        argv: findXargs(`-P${cpus} sha256sum`),
        check: findXargs('sha256sum'),
        parse: coreutils
      },
      {
        name: `openssl dgst, xargs -P${cpus}`,
        argv: findXargs(`-P${cpus} openssl dgst -sha256`),
        check: findXargs('openssl dgst -sha256'),
        parse: openssl
      }
    ]
  }
  return [oursTool()]
}

const kib = bytes => (bytes >= 1 << 20 ? `${bytes / (1 << 20)} MiB` : `${bytes / 1024} KiB`)

function parseOurs(stdout, target) {
  const { manifest } = JSON.parse(stdout)
  const base = fs.statSync(target).isDirectory() ? target : path.dirname(target)
  return new Map(manifest.map(entry => [path.join(base, entry.path), entry.sha256]))
}

function parseLines(stdout, pattern, fileGroup, digestGroup) {
  const digests = new Map()
  for (const line of stdout.split('\n').filter(Boolean)) {
    const match = pattern.exec(line)
    if (!match) throw new Error(`unexpected output line: ${line}`)
    digests.set(path.resolve(match[fileGroup]), match[digestGroup])
  }
  return digests
}

function crossCheck(tools, data) {
  let reference
  for (const tool of tools) {
    const digests = tool.parse(
      run(tool.check ?? tool.argv, { capture: true, env: tool.env }).stdout
    )
    if (digests.size !== data.files)
      throw new Error(`${tool.name} reported ${digests.size} files, expected ${data.files}`)
    if (!reference) {
      reference = { tool: tool.name, digests }
      continue
    }
    for (const [file, digest] of digests)
      if (reference.digests.get(file) !== digest)
        throw new Error(
          `${file}: ${tool.name} says ${digest}, ${reference.tool} says ${reference.digests.get(file)}`
        )
  }
}

// ---- measuring ------------------------------------------------------------------------------

const median = values => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function measure(set, data) {
  const tools = toolsFor(set, data)
  if (set !== 'startup') {
    run(sh(`find ${quote(data.target)} -type f -print0 | xargs -0 cat > /dev/null`))
    crossCheck(tools, data)
  }
  for (const tool of tools) run(tool.argv, { env: tool.env }) // warm-up
  const times = tools.map(() => [])
  const cpu = tools.map(() => [])
  const rss = tools.map(() => [])
  const loadBefore = os.loadavg()[0]
  for (let round = 0; round < runs; round++) {
    // Alternate, rotating who goes first, so drift on a shared machine hits every tool alike.
    for (let k = 0; k < tools.length; k++) {
      const i = (round + k) % tools.length
      const result = run(tools[i].argv, { env: tools[i].env })
      times[i].push(result.seconds)
      cpu[i].push(result.cpuSeconds)
      rss[i].push(result.rssMiB)
    }
  }
  const rows = tools.map((tool, i) => {
    const seconds = median(times[i])
    return {
      tool: tool.name,
      ours: tool.ours ?? false,
      readSize: tool.readSize,
      medianSeconds: seconds,
      times: times[i],
      medianCpuSeconds: median(cpu[i]),
      gibPerSecond: data.bytes / GiB / seconds,
      filesPerSecond: data.files / seconds,
      peakRssMiB: Math.max(...rss[i])
    }
  })
  const baselines = rows.filter(row => !row.ours)
  // Our speed-up against each baseline: its median time over ours (higher is better for us).
  for (const row of rows.filter(row => row.ours))
    row.speedup = Object.fromEntries(
      baselines.map(baseline => [baseline.tool, baseline.medianSeconds / row.medianSeconds])
    )
  // Other processes on the machine skew wall times: the 1-minute load average is recorded.
  const loadAverage = [loadBefore, os.loadavg()[0]]
  return { set, files: data.files, bytes: data.bytes, loadAverage, rows }
}

const TARGETS = {
  large: [
    { against: /^openssl dgst, xargs/, ratio: 0.9 },
    { against: /^sha256sum$/, ratio: 4 }
  ],
  single: [{ against: /^openssl dgst$/, ratio: 0.9 }],
  small: [{ against: /^sha256sum, xargs/, ratio: 1.0 }],
  dataset: [{ against: /^sha256sum, xargs/, ratio: 1.0 }]
}

/** The targets, for ours at the read size the engine chooses (the first row). */
function verdicts(result) {
  const ourRow = result.rows[0]
  const checks = (TARGETS[result.set] ?? []).map(({ against, ratio }) => {
    const [tool, measured] = Object.entries(ourRow.speedup).find(([name]) => against.test(name))
    return { target: `≥ ${ratio} × ${tool}`, measured, met: measured >= ratio }
  })
  if (result.set === 'startup')
    checks.push({
      target: 'start-up ≤ 0.5 s',
      measured: ourRow.medianSeconds,
      met: ourRow.medianSeconds <= 0.5
    })
  else
    checks.push({
      target: 'peak RSS ≤ 200 MiB',
      measured: ourRow.peakRssMiB,
      met: ourRow.peakRssMiB <= 200
    })
  return checks
}

function printResult(result) {
  const size =
    result.bytes >= GiB
      ? `${(result.bytes / GiB).toFixed(2)} GiB`
      : `${(result.bytes / MiB).toFixed(1)} MiB`
  const load = result.loadAverage.map(value => value.toFixed(2)).join(' → ')
  console.log(`\n## ${result.set}: ${result.files} file(s), ${size} (load average ${load})`)
  const baselines = result.rows.filter(row => !row.ours).map(row => row.tool)
  const header = [
    'tool',
    'median s',
    'CPU s',
    'GiB/s',
    'files/s',
    'peak RSS MiB',
    ...baselines.map(b => `ours vs ${b}`)
  ]
  console.log(`| ${header.join(' | ')} |`)
  console.log(`| --- |${' ---: |'.repeat(header.length - 1)}`)
  for (const row of result.rows) {
    const ratios = baselines.map(b => (row.speedup ? `${row.speedup[b].toFixed(2)}×` : ''))
    const cells = [
      row.tool,
      row.medianSeconds.toFixed(3),
      row.medianCpuSeconds.toFixed(2),
      row.gibPerSecond.toFixed(2),
      Math.round(row.filesPerSecond),
      row.peakRssMiB.toFixed(0),
      ...ratios
    ]
    console.log(`| ${cells.join(' | ')} |`)
  }
  for (const check of result.checks)
    console.log(
      `- ${check.met ? 'met' : 'NOT met'}: ${check.target} (measured ${check.measured.toFixed(2)})`
    )
}

/** The CPU's caches and the read size, as src/digest/read-size.ts sees them (the same module). */
function engineSettings() {
  const module = new URL('../src/digest/read-size.ts', import.meta.url).href
  const script = `import { cpuCaches, defaultReadSize } from ${JSON.stringify(module)}
    console.log(JSON.stringify({ caches: cpuCaches(), readSize: defaultReadSize() }))`
  const loader = new URL('../scripts/ts-loader/register.mjs', import.meta.url).href
  const result = spawnSync(
    process.execPath,
    ['--import', loader, '--input-type=module', '-e', script],
    { encoding: 'utf8', env: { ...process.env, VERIFY_MODEL_READ_SIZE: '' } }
  )
  if (result.status !== 0) throw new Error(`reading the engine's settings: ${result.stderr}`)
  return JSON.parse(result.stdout)
}

function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8')
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? 'unknown'
  const openssl = spawnSync('openssl', ['version'], { encoding: 'utf8' }).stdout.trim()
  const { caches, readSize } = engineSettings()
  const cacheText = Object.entries(caches)
    .map(([level, bytes]) => `${level} ${kib(bytes)}`)
    .join(', ')
  return {
    nproc: cpus,
    cpu: model,
    caches: cacheText || 'not reported',
    readSize: kib(readSize),
    node: process.version,
    openssl,
    memoryGiB: Math.round(os.totalmem() / GiB)
  }
}

// ---- main -----------------------------------------------------------------------------------

const root = fs.mkdtempSync(path.join(args.dir, 'verify-model-bench-'))
const results = { machine: machine(), scale, runs, ours: ours.join(' '), sets: [] }
const { caches, readSize } = results.machine
console.log(
  `machine: ${JSON.stringify(results.machine)}; scale ${scale}, ${runs} runs; ours: ${results.ours}`
)
console.log(`CPU caches per core: ${caches}; read size chosen by the engine: ${readSize}`)
try {
  for (const set of args.sets.split(',')) {
    const data = generate(root, set)
    const result = measure(set, data)
    result.checks = verdicts(result)
    results.sets.push(result)
    printResult(result)
    if (!args.keep) fs.rmSync(data.target, { recursive: true, force: true })
  }
} finally {
  if (!args.keep) fs.rmSync(root, { recursive: true, force: true })
}
fs.writeFileSync(path.join(repo, 'bench/results.json'), JSON.stringify(results, null, 2) + '\n')
console.log('\nwrote bench/results.json')
