// The build ledger (PROTOCOL.md section 2): types of the statement after validation, with every
// default applied; parseStatement() validates a signed statement, createStatement() writes one.
import { invalid } from '../errors.js'
import { RESERVED_ENV, reservedEnvHint } from './contract-env.js'
import { clip, utf8 } from './encoding.js'
import { ISA_LEVELS, ISA_PLATFORM, type IsaLevel } from './isa.js'
import { unsafePathReason } from './paths.js'
import { formatJsonPath, isJsonObject, parseStrictJson } from './strict-json.js'

const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1'
const PREDICATE_TYPE = 'https://openclaw.dev/build-ledger/v1'

export interface SourceRef {
  /** `git+https://…`, `git+ssh://…` or `git+file://…`, exactly as in the ledger. */
  uri: string
  /** Full commit id: 40 (sha1) or 64 (sha256) lowercase hex. */
  gitCommit: string
}

export interface Dependency {
  /** Path inside the source tree, validated: relative, no `..`, no empty segment. */
  name: string
  sha256: string
}

export interface DatasetRef {
  uri?: string
  treeSha256: string
}

export interface ImageRef {
  /** `oci://<registry>/<repository>` as written in the ledger. */
  uri: string
  /** `<registry>/<repository>` (the uri without `oci://`). */
  repository: string
  /** Manifest digest, 64 lowercase hex (no `sha256:` prefix). */
  sha256: string
  /** `<repository>@sha256:<digest>`: the only form ever run. */
  reference: string
  platform: string
}

export interface BuildSpec {
  command: string[]
  env: Record<string, string>
  sourceDateEpoch: number
  /** Paths relative to /out; `undefined` means all of /out. */
  outputs?: string[]
  workdir: string
  network: 'none' | 'bridge'
  timeoutSeconds: number
  cpus: number
  gpus: 'none' | 'all'
  /** Resumable runs the build is split into (PROTOCOL.md section 9); absent: one run. */
  segments?: number
  /** The CPU level the numeric kernels are capped to (PROTOCOL.md 4.1); absent: unpinned. */
  isa?: IsaLevel
}

export interface Ledger {
  source: SourceRef
  dependencies: Dependency[]
  dataset?: DatasetRef
  environment: ImageRef
  build: BuildSpec
}

const DEFAULT_PLATFORM = 'linux/amd64'
const MAX_CPUS = 1024
export const MAX_SEGMENTS = 100_000
// eslint-disable-next-line no-control-regex -- URIs must not contain whitespace or controls
const SPACE_OR_CONTROL = /[\s\u0000-\u001f\u007f]/
const BUILD_FIELDS = [
  'command',
  'env',
  'sourceDateEpoch',
  'outputs',
  'workdir',
  'network',
  'timeoutSeconds',
  'cpus',
  'gpus',
  'isa',
  'segments'
]

/**
 * Validates every rule of PROTOCOL.md section 2 on the exact signed payload bytes. Errors are
 * invalid and start with the JSON path of the offending field.
 */
export function parseStatement(payload: Uint8Array): Ledger {
  const root = new Node(parseStrictJson(payload, 'statement'), [])
  const statement = root.object()
  statement.field('_type').constant(STATEMENT_TYPE)
  statement.field('predicateType').constant(PREDICATE_TYPE)
  const predicate = statement.field('predicate').object()
  const source = parseSource(predicate.field('source'))
  checkSubject(statement.field('subject'))
  const dataset = predicate.optionalField('dataset')
  const environment = parseEnvironment(predicate.field('environment'))
  return {
    source,
    dependencies: (predicate.optionalField('dependencies')?.array() ?? []).map(parseDependency),
    ...(dataset === undefined ? {} : { dataset: parseDataset(dataset) }),
    environment,
    build: parseBuild(predicate.field('build'), environment.platform)
  }
}

function parseSource(node: Node): SourceRef {
  const source = node.object()
  const uri = source.field('uri').string()
  if (!/^git\+(https|ssh|file):\/\/./.test(uri) || SPACE_OR_CONTROL.test(uri)) {
    source
      .field('uri')
      .fail(`expected git+https://, git+ssh:// or git+file:// URL, got '${clip(uri)}'`)
  }
  const gitCommit = source.field('digest').object().field('gitCommit').string()
  if (!/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(gitCommit)) {
    source
      .field('digest')
      .field('gitCommit')
      .fail(`expected the full commit id (40 or 64 lowercase hex), got '${clip(gitCommit)}'`)
  }
  return { uri, gitCommit }
}

/**
 * in-toto requires a non-empty subject. PROTOCOL.md section 2 says it repeats the source but does
 * not make a differing subject a rejection, and verifiers must agree on validity: only the
 * predicate's source is ever used.
 */
function checkSubject(node: Node): void {
  if (node.array().length === 0) node.fail('expected at least one subject')
}

function parseDependency(node: Node): Dependency {
  const dependency = node.object()
  return {
    name: dependency.field('name').relativePath(),
    sha256: dependency.field('digest').object().field('sha256').hex(32)
  }
}

function parseDataset(node: Node): DatasetRef {
  const dataset = node.object()
  const treeSha256 = dataset.field('digest').object().field('treeSha256').hex(32)
  const uriNode = dataset.optionalField('uri')
  if (uriNode === undefined) return { treeSha256 }
  const uri = uriNode.string()
  if (!/^https?:\/\/./.test(uri) || SPACE_OR_CONTROL.test(uri)) {
    uriNode.fail(`expected an http:// or https:// URL, got '${clip(uri)}'`)
  }
  return { uri, treeSha256 }
}

// OCI distribution grammar: a registry host (optional port) then lowercase path components.
const REGISTRY =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?$/
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/

function parseEnvironment(node: Node): ImageRef {
  const environment = node.object()
  const uriNode = environment.field('uri')
  const uri = uriNode.string()
  const bad = (why: string): never =>
    uriNode.fail(`${why}; expected oci://<registry>/<repository>, got '${clip(uri)}'`)
  if (!uri.startsWith('oci://')) bad("missing the 'oci://' scheme")
  if (SPACE_OR_CONTROL.test(uri)) bad('whitespace or control characters not allowed')
  if (uri.includes('@')) bad('a digest is not allowed here (it goes in environment.digest.sha256)')
  const repository = uri.slice('oci://'.length)
  const [registry, ...path] = repository.split('/')
  if (path.length > 0 && path[path.length - 1].includes(':')) {
    bad('a tag is not allowed (the image is pinned by environment.digest.sha256)')
  }
  if (!REGISTRY.test(registry)) bad(`invalid registry '${clip(registry)}'`)
  if (path.length === 0) bad('missing the repository path')
  const badComponent = path.find(c => !PATH_COMPONENT.test(c))
  if (badComponent !== undefined) {
    bad(
      `invalid repository path component '${clip(badComponent)}' (lowercase a-z, 0-9, separators . _ -)`
    )
  }
  const sha256 = environment.field('digest').object().field('sha256').hex(32)
  const platformNode = environment.optionalField('platform')
  const platform = platformNode?.string() ?? DEFAULT_PLATFORM
  if (platformNode !== undefined && !/^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/.test(platform)) {
    platformNode.fail(
      `expected os/arch or os/arch/variant (e.g. linux/amd64), got '${clip(platform)}'`
    )
  }
  return { uri, repository, sha256, reference: `${repository}@sha256:${sha256}`, platform }
}

function parseBuild(node: Node, platform: string): BuildSpec {
  const build = node.object()
  for (const key of Object.keys(build.value as object)) {
    if (!BUILD_FIELDS.includes(key)) {
      build.child(key).fail('unknown field inside build (it could change what is run)')
    }
  }
  const commandNode = build.field('command')
  const command = commandNode.array().map(n => n.string({ allowEmpty: true }))
  if (command.length === 0) commandNode.fail('expected a non-empty argv array')
  if (command[0] === '') commandNode.child(0).fail('the program name must not be empty')
  const outputsNode = build.optionalField('outputs')
  const segmentsNode = build.optionalField('segments')
  const isa = parseIsa(build.optionalField('isa'), platform)
  return {
    command,
    env: parseEnv(build.optionalField('env')),
    sourceDateEpoch: build.field('sourceDateEpoch').integer(0),
    ...(outputsNode === undefined ? {} : { outputs: parseOutputs(outputsNode) }),
    workdir: parseWorkdir(build.optionalField('workdir')),
    network: build.optionalField('network')?.oneOf(['none', 'bridge'] as const) ?? 'none',
    timeoutSeconds: build.optionalField('timeoutSeconds')?.integer(1) ?? 3600,
    cpus: build.optionalField('cpus')?.integer(1, MAX_CPUS) ?? 1,
    gpus: build.optionalField('gpus')?.oneOf(['none', 'all'] as const) ?? 'none',
    ...(isa === undefined ? {} : { isa }),
    ...(segmentsNode === undefined ? {} : { segments: segmentsNode.integer(2, MAX_SEGMENTS) })
  }
}

function parseIsa(node: Node | undefined, platform: string): IsaLevel | undefined {
  if (node === undefined) return undefined
  const level = node.oneOf(ISA_LEVELS)
  if (platform !== ISA_PLATFORM) {
    node.fail(
      `'${level}' is a level of ${ISA_PLATFORM} but environment.platform is '${clip(platform)}': remove build.isa (no other platform has levels yet)`
    )
  }
  return level
}

/** '.' (the default) is the source root itself; anything else is a path below it. */
function parseWorkdir(node: Node | undefined): string {
  if (node === undefined || node.string() === '.') return '.'
  return node.relativePath()
}

function parseEnv(node: Node | undefined): Record<string, string> {
  const env: Record<string, string> = {}
  if (node === undefined) return env
  const object = node.object()
  for (const name of Object.keys(object.value as object)) {
    const entry = object.child(name)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      entry.fail('invalid variable name (must match ^[A-Za-z_][A-Za-z0-9_]*$)')
    }
    if (RESERVED_ENV.includes(name)) {
      entry.fail(
        `${name} is set by the verifier and must not be overridden (${reservedEnvHint(name)}): remove it from build.env`
      )
    }
    // defineProperty: a variable named __proto__ stays an ordinary own key.
    Object.defineProperty(env, name, {
      value: entry.string({ allowEmpty: true }),
      enumerable: true,
      writable: true,
      configurable: true
    })
  }
  return env
}

function parseOutputs(node: Node): string[] {
  const items = node.array()
  if (items.length === 0)
    node.fail('expected a non-empty array (omit outputs to collect all of /out)')
  const seen = new Set<string>()
  return items.map(item => {
    const path = item.relativePath()
    if (seen.has(path)) item.fail(`duplicate output '${clip(path)}'`)
    seen.add(path)
    return path
  })
}

/** A value at a JSON path, with typed accessors that fail naming that path. */
export class Node {
  constructor(
    readonly value: unknown,
    private readonly path: readonly (string | number)[]
  ) {}

  fail(message: string): never {
    const where = formatJsonPath(this.path)
    throw invalid(`${where === '' ? 'statement' : where}: ${message}`)
  }

  child(key: string | number): Node {
    const value =
      isJsonObject(this.value) || Array.isArray(this.value)
        ? Object.getOwnPropertyDescriptor(this.value, key)?.value
        : undefined
    return new Node(value, [...this.path, key])
  }

  field(key: string): Node {
    const node = this.child(key)
    if (node.value === undefined) this.fail(`missing required field '${key}'`)
    return node
  }

  optionalField(key: string): Node | undefined {
    const node = this.child(key)
    return node.value === undefined ? undefined : node
  }

  object(): Node {
    if (!isJsonObject(this.value)) this.fail(`expected an object, got ${typeName(this.value)}`)
    return this
  }

  array(): Node[] {
    if (!Array.isArray(this.value))
      return this.fail(`expected an array, got ${typeName(this.value)}`)
    return this.value.map((_, i) => this.child(i))
  }

  string({ allowEmpty = false } = {}): string {
    if (typeof this.value !== 'string')
      return this.fail(`expected a string, got ${typeName(this.value)}`)
    if (!allowEmpty && this.value === '') this.fail('must not be empty')
    if (this.value.includes('\u0000')) this.fail('NUL character not allowed')
    return this.value
  }

  constant(expected: string): void {
    const actual = this.string()
    if (actual !== expected) this.fail(`expected '${expected}', got '${clip(actual)}'`)
  }

  oneOf<T extends string>(allowed: readonly T[]): T {
    const actual = this.string()
    const match = allowed.find(a => a === actual)
    if (match === undefined) {
      this.fail(`expected one of ${allowed.map(a => `'${a}'`).join(', ')}, got '${clip(actual)}'`)
    }
    return match
  }

  integer(min: number, max = Number.MAX_SAFE_INTEGER): number {
    const n = this.value
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
      return this.fail(`expected an integer, got ${typeof n === 'number' ? n : typeName(n)}`)
    }
    if (n < min || n > max) this.fail(`expected an integer from ${min} to ${max}, got ${n}`)
    return n
  }

  hex(bytes: number): string {
    const s = this.string()
    if (s.length !== bytes * 2 || !/^[0-9a-f]*$/.test(s)) {
      this.fail(`expected ${bytes * 2} lowercase hex characters, got '${clip(s)}'`)
    }
    return s
  }

  /** A path below a fixed root: relative, '/'-separated, no '.', '..' or empty segment. */
  relativePath(): string {
    const s = this.string()
    const reason = unsafePathReason(s)
    if (reason !== undefined) this.fail(`${reason}, got '${clip(s)}'`)
    return s
  }
}

function typeName(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

export interface StatementInput {
  sourceUri: string
  gitCommit: string
  dependencies: Dependency[]
  dataset?: DatasetRef
  image: { uri: string; sha256: string; platform?: string }
  build: Pick<BuildSpec, 'command' | 'sourceDateEpoch'> &
    Partial<Omit<BuildSpec, 'command' | 'sourceDateEpoch'>>
}

/**
 * The canonical statement bytes for `ledger init` (2-space JSON and a newline), validated by
 * parsing them back, so a publisher can never sign a statement verifiers reject.
 */
export function createStatement(input: StatementInput): Uint8Array {
  const source = { uri: input.sourceUri, digest: { gitCommit: input.gitCommit } }
  const { dataset } = input
  const statement = {
    _type: STATEMENT_TYPE,
    subject: [{ name: 'source', ...source }],
    predicateType: PREDICATE_TYPE,
    predicate: {
      source,
      dependencies: input.dependencies.map(d => ({ name: d.name, digest: { sha256: d.sha256 } })),
      ...(dataset === undefined
        ? {}
        : { dataset: { uri: dataset.uri, digest: { treeSha256: dataset.treeSha256 } } }),
      environment: {
        uri: input.image.uri,
        digest: { sha256: input.image.sha256 },
        platform: input.image.platform ?? DEFAULT_PLATFORM
      },
      build: input.build
    }
  }
  const bytes = utf8(`${JSON.stringify(statement, null, 2)}\n`)
  parseStatement(bytes)
  return bytes
}
