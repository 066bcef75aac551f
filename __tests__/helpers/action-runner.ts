// Runs the committed action bundle the way the GitHub runner runs a `node24` action step.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parse as parseYaml } from 'yaml'
import type { Report } from '../../src/verify/report.js'
import { repoRoot } from './paths.js'

export interface BundledActionOptions {
  /** Where the run's directories are made (default: the OS temp dir); the caller removes them. */
  baseDir?: string
  /** Extra environment, on top of the clean runner environment. */
  env?: Record<string, string>
  /** The child is killed (SIGKILL) after this long. */
  timeoutMs?: number
  /** The bundle to run (default: the committed dist/index.js). */
  bundle?: string
  onSpawn?: SpawnOptions['onSpawn']
  maxStdoutChars?: number
  /**
   * The /proc/cpuinfo the step sees, for another runner's CPU: bind-mounted over the kernel's
   * in a private mount namespace of the step (`unshare --mount`, which needs root).
   */
  cpuInfo?: string
}

export interface BundledActionResult {
  exitCode: number | null
  signal: NodeJS.Signals | null
  /** The step's environment (a `post:` step runs with the same one, plus STATE_*). */
  env: NodeJS.ProcessEnv
  stdout: string
  stderr: string
  /** GITHUB_OUTPUT, parsed: the last value of each name, as the runner takes it. */
  outputs: Record<string, string>
  /** The workflow commands the runner would obey in stdout (what `::stop-commands::` leaves). */
  commands: WorkflowCommand[]
  /** GITHUB_STEP_SUMMARY's content. */
  summary: string
  /** The JSON file at the `report` output, when it was set and exists. */
  report?: Report
  /** The step's RUNNER_TEMP (the file-command files live in `_runner_file_commands/` inside). */
  runnerTemp: string
  /** GITHUB_WORKSPACE, the step's working directory. */
  workspace: string
  durationMs: number
}

/** The runner's own file-command directory inside RUNNER_TEMP. */
export const FILE_COMMANDS_DIR = '_runner_file_commands'

/**
 * Runs `node <bundle>` as a workflow step would: `INPUT_<NAME>` for every input given and for
 * every default in action.yml (the runner always sets declared defaults), fresh GITHUB_OUTPUT /
 * GITHUB_STEP_SUMMARY / GITHUB_STATE / GITHUB_ENV / GITHUB_PATH files, RUNNER_TEMP and
 * RUNNER_TOOL_CACHE directories, GITHUB_WORKSPACE as the working directory, and nothing of the
 * parent's INPUT_*, GITHUB_*, RUNNER_*, ACTIONS_*, VERIFY_MODEL_* or NODE_OPTIONS. An input that
 * action.yml does not declare is an error here (the runner would only warn: in a test, a typo).
 */
export async function runBundledAction(
  inputs: Record<string, string>,
  options: BundledActionOptions = {}
): Promise<BundledActionResult> {
  const root = mkdtempSync(path.join(options.baseDir ?? os.tmpdir(), 'runner-'))
  const runnerTemp = path.join(root, 'temp')
  const toolCache = path.join(root, 'tool-cache')
  const workspace = path.join(root, 'workspace')
  const fileCommands = path.join(runnerTemp, FILE_COMMANDS_DIR)
  for (const dir of [fileCommands, toolCache, workspace]) mkdirSync(dir, { recursive: true })
  const fileCommand = (name: string) => {
    const file = path.join(fileCommands, `${name}_${randomUUID()}`)
    writeFileSync(file, '')
    return file
  }
  const outputFile = fileCommand('set_output')
  const summaryFile = fileCommand('step_summary')

  const env: NodeJS.ProcessEnv = {
    ...cleanParentEnv(),
    ...inputEnv({ ...actionDefaults(), ...checkedInputs(inputs) }),
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_STATE: fileCommand('save_state'),
    GITHUB_ENV: fileCommand('set_env'),
    GITHUB_PATH: fileCommand('add_path'),
    GITHUB_WORKSPACE: workspace,
    GITHUB_RUN_ID: String(Date.now()),
    RUNNER_TEMP: runnerTemp,
    RUNNER_TOOL_CACHE: toolCache,
    RUNNER_OS: 'Linux',
    // Test servers are plain http on loopback, which the action fetches only with this setting;
    // a test of the production default sets it to 'false'.
    VERIFY_MODEL_ALLOW_LOOPBACK_HTTP: 'true',
    ...options.env
  }

  let cpuInfoFile: string | undefined
  if (options.cpuInfo !== undefined) {
    cpuInfoFile = path.join(root, 'cpuinfo')
    writeFileSync(cpuInfoFile, options.cpuInfo)
  }
  const started = Date.now()
  const { exitCode, signal, stdout, stderr } = await spawnNode(
    options.bundle ?? path.join(repoRoot, 'dist/index.js'),
    {
      cwd: workspace,
      env,
      timeoutMs: options.timeoutMs ?? 120_000,
      onSpawn: options.onSpawn,
      maxStdoutChars: options.maxStdoutChars,
      cpuInfoFile
    }
  )
  const outputs = parseFileCommandValues(readFileSync(outputFile, 'utf8'))
  const reportPath = outputs.report
  return {
    exitCode,
    signal,
    env,
    stdout,
    stderr,
    outputs,
    commands: parseWorkflowCommands(stdout),
    summary: readFileSync(summaryFile, 'utf8'),
    report:
      reportPath && existsSync(reportPath)
        ? (JSON.parse(readFileSync(reportPath, 'utf8')) as Report)
        : undefined,
    runnerTemp,
    workspace,
    durationMs: Date.now() - started
  }
}

/** `INPUT_` + the name with spaces as `_`, upper-cased; hyphens stay (`INPUT_PUBLIC-KEY`). */
export function inputVariable(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`
}

function inputEnv(inputs: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(inputs).map(([name, value]) => [inputVariable(name), value])
  )
}

interface ActionMetadata {
  inputs?: Record<string, { default?: string | number | boolean }>
}

function actionMetadata(): ActionMetadata {
  return parseYaml(readFileSync(path.join(repoRoot, 'action.yml'), 'utf8')) as ActionMetadata
}

function actionDefaults(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(actionMetadata().inputs ?? {})
      .filter(([, input]) => input.default !== undefined)
      .map(([name, input]) => [name, String(input.default)])
  )
}

function checkedInputs(inputs: Record<string, string>): Record<string, string> {
  const declared = Object.keys(actionMetadata().inputs ?? {})
  const unknown = Object.keys(inputs).filter(name => !declared.includes(name))
  if (unknown.length > 0) {
    throw new Error(
      `action.yml declares no input ${unknown.join(', ')} (it has ${declared.join(', ')})`
    )
  }
  return inputs
}

/** The runner's variables, and the limits of src/action/runner-limits.ts (give them per run). */
const STRIPPED_PREFIXES = ['INPUT_', 'GITHUB_', 'RUNNER_', 'ACTIONS_', 'STATE_', 'VERIFY_MODEL_']
const STRIPPED_NAMES = ['NODE_OPTIONS', 'NODE_ENV', 'JEST_WORKER_ID']

function cleanParentEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) =>
        !STRIPPED_PREFIXES.some(prefix => name.toUpperCase().startsWith(prefix)) &&
        !STRIPPED_NAMES.includes(name)
    )
  )
}

/**
 * Parses a GITHUB_OUTPUT-style file: `name<<DELIMITER` heredocs (what @actions/core writes) and
 * `name=value` lines. A malformed file is an error: a half-written output is a bug to report.
 */
export function parseFileCommandValues(text: string): Record<string, string> {
  const values: Record<string, string> = {}
  const lines = text.split(/\r?\n/)
  if (lines.at(-1) === '') lines.pop()
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line)
    if (heredoc) {
      const [, name, delimiter] = heredoc
      const end = lines.indexOf(delimiter, i + 1)
      if (end < 0) throw new Error(`file command ${name}: no closing delimiter ${delimiter}`)
      values[name] = lines.slice(i + 1, end).join('\n')
      i = end
      continue
    }
    const separator = line.indexOf('=')
    if (separator <= 0) throw new Error(`file command line ${i + 1} is malformed: '${line}'`)
    values[line.slice(0, separator)] = line.slice(separator + 1)
  }
  return values
}

export interface WorkflowCommand {
  /** Lower case, as the runner matches names case-insensitively. */
  command: string
  properties: Record<string, string>
  message: string
}

/** The commands the runner registers (actions/runner ActionCommandManager and its extensions). */
const RUNNER_COMMANDS = [
  'set-env',
  'set-output',
  'save-state',
  'add-mask',
  'add-path',
  'add-matcher',
  'remove-matcher',
  'warning',
  'error',
  'notice',
  'debug',
  'group',
  'endgroup',
  'echo'
]

/**
 * The workflow commands a step's log issues, read the way the runner reads them: per line, the
 * `::name props::message` form after leading spaces, else the older `##[name props]message` form
 * anywhere in the line; `::stop-commands::TOKEN` ignores everything up to `::TOKEN::`.
 */
export function parseWorkflowCommands(log: string): WorkflowCommand[] {
  const commands: WorkflowCommand[] = []
  let stopToken: string | undefined
  for (const line of log.split(/\r\n|\r|\n/)) {
    const registered = new Set([...RUNNER_COMMANDS, 'stop-commands'])
    if (stopToken !== undefined) registered.add(stopToken)
    const command = parseCommandV2(line, registered) ?? parseCommandV1(line, registered)
    if (command === undefined) continue
    if (stopToken !== undefined) {
      if (command.command === stopToken) stopToken = undefined
    } else if (command.command === 'stop-commands') {
      stopToken = command.message.toLowerCase()
    } else {
      commands.push(command)
    }
  }
  return commands
}

/**
 * .NET `Char.IsWhiteSpace`, what the runner's `String.TrimStart()` removes before it looks for
 * `::` (actions/runner ActionCommand.TryParseV2): Unicode White_Space, which unlike JavaScript's
 * `\s` includes U+0085 and excludes U+FEFF.
 */
export const DOTNET_WHITESPACE: readonly string[] = [
  '\t',
  '\n',
  '\v',
  '\f',
  '\r',
  ' ',
  '\u0085',
  '\u00a0',
  '\u1680',
  ...Array.from({ length: 11 }, (_, i) => String.fromCharCode(0x2000 + i)),
  '\u2028',
  '\u2029',
  '\u202f',
  '\u205f',
  '\u3000'
]

export function dotnetTrimStart(text: string): string {
  let start = 0
  while (start < text.length && DOTNET_WHITESPACE.includes(text[start])) start++
  return text.slice(start)
}

function parseCommandV2(line: string, registered: Set<string>): WorkflowCommand | undefined {
  const text = dotnetTrimStart(line)
  if (!text.startsWith('::')) return undefined
  const end = text.indexOf('::', 2)
  if (end < 0) return undefined
  return commandOf(text.slice(2, end), ',', registered, text.slice(end + 2), {
    data: DATA_ESCAPES,
    property: PROPERTY_ESCAPES
  })
}

function parseCommandV1(line: string, registered: Set<string>): WorkflowCommand | undefined {
  const start = line.indexOf('##[')
  if (start < 0) return undefined
  const end = line.indexOf(']', start)
  if (end < 0) return undefined
  return commandOf(line.slice(start + 3, end), ';', registered, line.slice(end + 1), {
    data: V1_ESCAPES,
    property: V1_ESCAPES
  })
}

// The runner's unescaping tables, in its order (percent last).
type Escape = [string, string]
const DATA_ESCAPES: Escape[] = [
  ['%0D', '\r'],
  ['%0A', '\n'],
  ['%25', '%']
]
const PROPERTY_ESCAPES: Escape[] = [
  ['%0D', '\r'],
  ['%0A', '\n'],
  ['%3A', ':'],
  ['%2C', ','],
  ['%25', '%']
]
const V1_ESCAPES: Escape[] = [
  ['%3B', ';'],
  ['%0D', '\r'],
  ['%0A', '\n'],
  ['%5D', ']'],
  ['%25', '%']
]

function commandOf(
  info: string,
  separator: string,
  registered: Set<string>,
  data: string,
  escapes: { data: Escape[]; property: Escape[] }
): WorkflowCommand | undefined {
  const space = info.indexOf(' ')
  const name = (space < 0 ? info : info.slice(0, space)).toLowerCase()
  if (!registered.has(name)) return undefined
  const properties: Record<string, string> = {}
  if (space > 0) {
    for (const pair of info.slice(space + 1).split(separator)) {
      const equals = pair.indexOf('=')
      if (equals > 0 && equals < pair.length - 1)
        properties[pair.slice(0, equals)] = unescape(pair.slice(equals + 1), escapes.property)
    }
  }
  return { command: name, properties, message: unescape(data, escapes.data) }
}

function unescape(text: string, escapes: Escape[]): string {
  return escapes.reduce((value, [escaped, plain]) => value.replaceAll(escaped, plain), text)
}

export interface SpawnResult {
  exitCode: number | null
  /** The signal that ended the child, if one did. */
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface SpawnOptions {
  cwd: string
  env: NodeJS.ProcessEnv
  timeoutMs: number
  args?: string[]
  /** Called once the child runs (to signal it, for instance). */
  onSpawn?: (child: ChildProcess) => void
  /** Beyond this, only the first and the last `maxStdoutChars / 2` of stdout are kept. */
  maxStdoutChars?: number
  /** Runs the script in a private mount namespace with this file as /proc/cpuinfo. */
  cpuInfoFile?: string
}

/**
 * Runs `node <script> [args]`. Async, so that servers in this process (the loopback HTTP
 * fixtures) keep answering.
 */
export function spawnNode(script: string, options: SpawnOptions): Promise<SpawnResult> {
  const scriptArgs = [script, ...(options.args ?? [])]
  const [file, args] =
    options.cpuInfoFile === undefined
      ? [process.execPath, scriptArgs]
      : [
          'unshare',
          [
            '--mount',
            '--',
            process.execPath,
            path.join(repoRoot, '__tests__/helpers/with-cpuinfo.mjs'),
            options.cpuInfoFile,
            ...scriptArgs
          ]
        ]
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe']
    })
    options.onSpawn?.(child)
    const stdout = new KeptText(options.maxStdoutChars ?? Infinity)
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => stdout.add(chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, options.timeoutMs)
    child.on('error', error => {
      clearTimeout(timer)
      reject(error)
    })
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer)
      if (timedOut) {
        reject(
          new Error(
            `node ${script} did not finish within ${options.timeoutMs} ms\n--- stdout\n${stdout.text().slice(-20000)}\n--- stderr\n${stderr.slice(-20000)}`
          )
        )
      } else {
        resolve({ exitCode, signal, stdout: stdout.text(), stderr })
      }
    })
  })
}

/** A stream's text, or its head and tail when it is longer than `max` characters. */
class KeptText {
  private head = ''
  private tail: string[] = []
  private tailLength = 0
  private dropped = 0

  constructor(private readonly max: number) {}

  add(chunk: string): void {
    if (this.tail.length === 0 && this.head.length + chunk.length <= this.max / 2) {
      this.head += chunk
      return
    }
    this.tail.push(chunk)
    this.tailLength += chunk.length
    while (this.tailLength - this.tail[0].length >= this.max / 2) {
      const first = this.tail.shift()!
      this.tailLength -= first.length
      this.dropped += first.length
    }
  }

  text(): string {
    const tail = this.tail.join('')
    return this.dropped === 0
      ? this.head + tail
      : `${this.head}\n…(${this.dropped} characters not kept)…\n${tail}`
  }
}

/**
 * Runs the action's `post:` step as the runner does after the job's steps: the same environment,
 * plus `STATE_<name>` for every value the main step saved to GITHUB_STATE.
 */
export async function runPostStep(
  main: BundledActionResult,
  options: { timeoutMs?: number; bundle?: string } = {}
): Promise<SpawnResult> {
  const state = parseFileCommandValues(readFileSync(main.env.GITHUB_STATE!, 'utf8'))
  const env = {
    ...main.env,
    ...Object.fromEntries(Object.entries(state).map(([name, value]) => [`STATE_${name}`, value]))
  }
  return spawnNode(options.bundle ?? path.join(repoRoot, 'dist/post/index.js'), {
    cwd: main.workspace,
    env,
    timeoutMs: options.timeoutMs ?? 60_000
  })
}
