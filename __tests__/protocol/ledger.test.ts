import { describe, expect, it } from '@jest/globals'
import { createStatement, parseStatement } from '../../src/protocol/ledger.js'

const COMMIT = '4b825dc642cb6eb9a060e54bf8d69288fbee4904'
const HEX = (c: string) => c.repeat(64)

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

function baseStatement(): Json {
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [
      { name: 'source', uri: 'git+https://github.com/acme/m', digest: { gitCommit: COMMIT } }
    ],
    predicateType: 'https://openclaw.dev/build-ledger/v1',
    predicate: {
      source: { uri: 'git+https://github.com/acme/m', digest: { gitCommit: COMMIT } },
      dependencies: [{ name: 'requirements.lock', digest: { sha256: HEX('a') } }],
      dataset: { uri: 'https://example.org/d.tar.gz', digest: { treeSha256: HEX('b') } },
      environment: { uri: 'oci://ghcr.io/acme/trainer', digest: { sha256: HEX('c') } },
      build: { command: ['python3', 'train.py'], sourceDateEpoch: 1700000000 }
    }
  }
}

const encode = (doc: unknown) => new TextEncoder().encode(JSON.stringify(doc))

/** Parses the base statement after `change` edited it. */
function parseWith(change: (s: Json) => void) {
  const statement = baseStatement()
  change(statement)
  return parseStatement(encode(statement))
}

function expectRejected(change: (s: Json) => void, message: string) {
  expect(() => parseWith(change)).toThrow(
    expect.objectContaining({ verdict: 'invalid', message: expect.stringContaining(message) })
  )
}

describe('parseStatement', () => {
  it('fills the Ledger with every default', () => {
    const ledger = parseWith(s => delete s.predicate.dependencies)
    expect(ledger).toEqual({
      source: { uri: 'git+https://github.com/acme/m', gitCommit: COMMIT },
      dependencies: [],
      dataset: { uri: 'https://example.org/d.tar.gz', treeSha256: HEX('b') },
      environment: {
        uri: 'oci://ghcr.io/acme/trainer',
        repository: 'ghcr.io/acme/trainer',
        sha256: HEX('c'),
        reference: `ghcr.io/acme/trainer@sha256:${HEX('c')}`,
        platform: 'linux/amd64'
      },
      build: {
        command: ['python3', 'train.py'],
        env: {},
        sourceDateEpoch: 1700000000,
        workdir: '.',
        network: 'none',
        timeoutSeconds: 3600,
        cpus: 1,
        gpus: 'none'
      }
    })
  })

  it('keeps every explicit build field', () => {
    const ledger = parseWith(s => {
      s.predicate.environment.platform = 'linux/arm64/v8'
      s.predicate.build = {
        command: ['sh', '-c', ''],
        env: { SEED: '0', EMPTY: '' },
        sourceDateEpoch: 0,
        outputs: ['model.safetensors', 'tokenizer/vocab.json'],
        workdir: 'training/src',
        network: 'bridge',
        timeoutSeconds: 60,
        cpus: 8,
        gpus: 'all'
      }
    })
    expect(ledger.environment.platform).toBe('linux/arm64/v8')
    expect(ledger.build).toEqual({
      command: ['sh', '-c', ''],
      env: { SEED: '0', EMPTY: '' },
      sourceDateEpoch: 0,
      outputs: ['model.safetensors', 'tokenizer/vocab.json'],
      workdir: 'training/src',
      network: 'bridge',
      timeoutSeconds: 60,
      cpus: 8,
      gpus: 'all'
    })
  })

  it('accepts a dataset without uri, a sha256 commit and a registry with a port', () => {
    const ledger = parseWith(s => {
      delete s.predicate.dataset.uri
      s.predicate.source.digest.gitCommit = HEX('d')
      s.subject[0].digest.gitCommit = HEX('d')
      s.predicate.environment.uri = 'oci://127.0.0.1:5000/team/img_x-y.z'
    })
    expect(ledger.dataset).toEqual({ treeSha256: HEX('b') })
    expect(ledger.source.gitCommit).toBe(HEX('d'))
    expect(ledger.environment.reference).toBe(`127.0.0.1:5000/team/img_x-y.z@sha256:${HEX('c')}`)
  })

  it('accepts a subject that does not repeat the source: only predicate.source is used', () => {
    const ledger = parseWith(s => (s.subject[0].digest = { sha256: HEX('e') }))
    expect(ledger.source.gitCommit).toBe(COMMIT)
  })

  it('leaves out dataset, outputs and isa when absent', () => {
    const ledger = parseWith(s => delete s.predicate.dataset)
    expect('dataset' in ledger).toBe(false)
    expect('outputs' in ledger.build).toBe(false)
    expect('isa' in ledger.build).toBe(false)
  })

  it.each([['x86-64-v2'], ['x86-64-v3'], ['x86-64-v4']])(
    'keeps build.isa %s on linux/amd64, written or by default',
    level => {
      expect(parseWith(s => (s.predicate.build.isa = level)).build.isa).toBe(level)
      const explicit = parseWith(s => {
        s.predicate.environment.platform = 'linux/amd64'
        s.predicate.build.isa = level
      })
      expect(explicit.build.isa).toBe(level)
    }
  )

  it('ignores unknown fields outside build', () => {
    const ledger = parseWith(s => {
      s.extra = 1
      s.predicate.model = { digest: { sha256: HEX('e') } }
      s.predicate.source.note = 'x'
      s.predicate.environment.labels = {}
    })
    expect(ledger.source.gitCommit).toBe(COMMIT)
  })

  it('keeps an env variable named __proto__ as an own key without touching prototypes', () => {
    const statement = JSON.stringify(baseStatement()).replace(
      '"sourceDateEpoch"',
      '"env": {"__proto__": "x", "constructor": "y"}, "sourceDateEpoch"'
    )
    const ledger = parseStatement(new TextEncoder().encode(statement))
    expect(Object.keys(ledger.build.env)).toEqual(['__proto__', 'constructor'])
    expect(Object.getOwnPropertyDescriptor(ledger.build.env, '__proto__')?.value).toBe('x')
    expect(Object.getPrototypeOf(ledger.build.env)).toBe(Object.prototype)
  })
})

describe('ledger rules, each naming the JSON path', () => {
  const rules: [string, (s: Json) => void, string][] = [
    [
      '_type',
      s => (s._type = 'https://in-toto.io/Statement/v0.1'),
      "_type: expected 'https://in-toto.io/Statement/v1'"
    ],
    ['_type missing', s => delete s._type, "statement: missing required field '_type'"],
    [
      'predicateType',
      s => (s.predicateType = 'x'),
      "predicateType: expected 'https://openclaw.dev/build-ledger/v1'"
    ],
    ['subject missing', s => delete s.subject, "statement: missing required field 'subject'"],
    ['subject not an array', s => (s.subject = {}), 'subject: expected an array, got an object'],
    ['subject empty', s => (s.subject = []), 'subject: expected at least one subject'],
    ['predicate missing', s => delete s.predicate, "statement: missing required field 'predicate'"],
    [
      'source missing',
      s => delete s.predicate.source,
      "predicate: missing required field 'source'"
    ],
    [
      'source uri scheme',
      s => (s.predicate.source.uri = 'https://github.com/acme/m'),
      'predicate.source.uri: expected git+https://, git+ssh:// or git+file:// URL'
    ],
    [
      'source uri whitespace',
      s => (s.predicate.source.uri = 'git+https://x/ y'),
      'predicate.source.uri: expected git+https://'
    ],
    [
      'gitCommit short',
      s => (s.predicate.source.digest.gitCommit = '4b825dc'),
      'predicate.source.digest.gitCommit: expected the full commit id'
    ],
    [
      'gitCommit uppercase',
      s => (s.predicate.source.digest.gitCommit = COMMIT.toUpperCase()),
      'predicate.source.digest.gitCommit: expected the full commit id'
    ],
    [
      'dependencies not an array',
      s => (s.predicate.dependencies = {}),
      'predicate.dependencies: expected an array'
    ],
    [
      'dependency ..',
      s => (s.predicate.dependencies[0].name = 'a/../b'),
      "predicate.dependencies[0].name: '..' segment not allowed"
    ],
    [
      'dependency absolute',
      s => (s.predicate.dependencies[0].name = '/etc/passwd'),
      'predicate.dependencies[0].name: absolute path not allowed'
    ],
    [
      'dependency empty segment',
      s => (s.predicate.dependencies[0].name = 'a//b'),
      'predicate.dependencies[0].name: empty segment not allowed'
    ],
    [
      'dependency trailing slash',
      s => (s.predicate.dependencies[0].name = 'a/'),
      'predicate.dependencies[0].name: empty segment not allowed'
    ],
    [
      'dependency NUL',
      s => (s.predicate.dependencies[0].name = 'a\u0000b'),
      'predicate.dependencies[0].name: NUL character not allowed'
    ],
    [
      'dependency backslash',
      s => (s.predicate.dependencies[0].name = 'a\\b'),
      'predicate.dependencies[0].name: backslash not allowed'
    ],
    [
      'dependency empty',
      s => (s.predicate.dependencies[0].name = ''),
      'predicate.dependencies[0].name: must not be empty'
    ],
    [
      'dependency sha256',
      s => (s.predicate.dependencies[0].digest.sha256 = HEX('a').slice(1)),
      'predicate.dependencies[0].digest.sha256: expected 64 lowercase hex'
    ],
    [
      'dataset treeSha256',
      s => (s.predicate.dataset.digest.treeSha256 = HEX('G')),
      'predicate.dataset.digest.treeSha256: expected 64 lowercase hex'
    ],
    [
      'dataset uri',
      s => (s.predicate.dataset.uri = 'ftp://example.org/d'),
      'predicate.dataset.uri: expected an http:// or https:// URL'
    ],
    [
      'dataset uri type',
      s => (s.predicate.dataset.uri = 5),
      'predicate.dataset.uri: expected a string, got a number'
    ],
    [
      'environment missing',
      s => delete s.predicate.environment,
      "predicate: missing required field 'environment'"
    ],
    [
      'environment scheme',
      s => (s.predicate.environment.uri = 'ghcr.io/acme/trainer'),
      "predicate.environment.uri: missing the 'oci://' scheme"
    ],
    [
      'environment tag',
      s => (s.predicate.environment.uri = 'oci://ghcr.io/acme/trainer:v1'),
      'predicate.environment.uri: a tag is not allowed'
    ],
    [
      'environment digest in uri',
      s => (s.predicate.environment.uri = `oci://ghcr.io/acme/t@sha256:${HEX('c')}`),
      'predicate.environment.uri: a digest is not allowed here'
    ],
    [
      'environment whitespace',
      s => (s.predicate.environment.uri = 'oci://ghcr.io/acme/ trainer'),
      'predicate.environment.uri: whitespace or control characters not allowed'
    ],
    [
      'environment uppercase repo',
      s => (s.predicate.environment.uri = 'oci://ghcr.io/Acme/trainer'),
      "predicate.environment.uri: invalid repository path component 'Acme'"
    ],
    [
      'environment no repository',
      s => (s.predicate.environment.uri = 'oci://ghcr.io'),
      'predicate.environment.uri: missing the repository path'
    ],
    [
      'environment bad registry',
      s => (s.predicate.environment.uri = 'oci://-bad-/x'),
      "predicate.environment.uri: invalid registry '-bad-'"
    ],
    [
      'environment sha256',
      s => (s.predicate.environment.digest.sha256 = `sha256:${HEX('c')}`),
      'predicate.environment.digest.sha256: expected 64 lowercase hex'
    ],
    [
      'platform',
      s => (s.predicate.environment.platform = 'linux'),
      'predicate.environment.platform: expected os/arch or os/arch/variant'
    ],
    ['build missing', s => delete s.predicate.build, "predicate: missing required field 'build'"],
    [
      'command missing',
      s => delete s.predicate.build.command,
      "predicate.build: missing required field 'command'"
    ],
    [
      'command shell string',
      s => (s.predicate.build.command = 'python3 train.py'),
      'predicate.build.command: expected an array, got a string'
    ],
    [
      'command empty',
      s => (s.predicate.build.command = []),
      'predicate.build.command: expected a non-empty argv array'
    ],
    [
      'command element type',
      s => (s.predicate.build.command = ['python3', 1]),
      'predicate.build.command[1]: expected a string, got a number'
    ],
    [
      'command NUL',
      s => (s.predicate.build.command = ['python3', 'a\u0000']),
      'predicate.build.command[1]: NUL character not allowed'
    ],
    [
      'command empty program',
      s => (s.predicate.build.command = ['']),
      'predicate.build.command[0]: the program name must not be empty'
    ],
    [
      'env not an object',
      s => (s.predicate.build.env = ['A=1']),
      'predicate.build.env: expected an object, got an array'
    ],
    [
      'env name',
      s => (s.predicate.build.env = { '1X': 'a' }),
      'predicate.build.env["1X"]: invalid variable name'
    ],
    [
      'env value type',
      s => (s.predicate.build.env = { X: 1 }),
      'predicate.build.env.X: expected a string, got a number'
    ],
    [
      'env SOURCE_DATE_EPOCH',
      s => (s.predicate.build.env = { SOURCE_DATE_EPOCH: '0' }),
      'predicate.build.env.SOURCE_DATE_EPOCH: SOURCE_DATE_EPOCH is set by the verifier'
    ],
    [
      'env HOME',
      s => (s.predicate.build.env = { HOME: '/root' }),
      'predicate.build.env.HOME: HOME is set by the verifier'
    ],
    [
      'env OMP_NUM_THREADS',
      s => (s.predicate.build.env = { OMP_NUM_THREADS: '2' }),
      'predicate.build.env.OMP_NUM_THREADS: OMP_NUM_THREADS is set by the verifier and must not be overridden (build.cpus sets the thread count): remove it from build.env'
    ],
    [
      'env of the ISA profile',
      s => (s.predicate.build.env = { ATEN_CPU_CAPABILITY: 'avx512' }),
      'predicate.build.env.ATEN_CPU_CAPABILITY: ATEN_CPU_CAPABILITY is set by the verifier and must not be overridden (build.isa sets the ISA profile)'
    ],
    [
      'env of the ISA profile on an unpinned ledger',
      s => (s.predicate.build.env = { GLIBC_TUNABLES: '' }),
      'predicate.build.env.GLIBC_TUNABLES: GLIBC_TUNABLES is set by the verifier'
    ],
    [
      'env segment variable',
      s => (s.predicate.build.env = { VERIFY_MODEL_SEGMENTS: '4' }),
      'predicate.build.env.VERIFY_MODEL_SEGMENTS: VERIFY_MODEL_SEGMENTS is set by the verifier'
    ],
    [
      'env TZ',
      s => (s.predicate.build.env = { TZ: 'Europe/Paris' }),
      'predicate.build.env.TZ: TZ is set by the verifier and must not be overridden (the container contract fixes it)'
    ],
    [
      'isa unknown level',
      s => (s.predicate.build.isa = 'x86-64-v5'),
      "predicate.build.isa: expected one of 'x86-64-v2', 'x86-64-v3', 'x86-64-v4', got 'x86-64-v5'"
    ],
    [
      'isa a number',
      s => (s.predicate.build.isa = 3),
      'predicate.build.isa: expected a string, got a number'
    ],
    ['isa empty', s => (s.predicate.build.isa = ''), 'predicate.build.isa: must not be empty'],
    [
      'isa on arm64',
      s => {
        s.predicate.environment.platform = 'linux/arm64'
        s.predicate.build.isa = 'x86-64-v3'
      },
      "predicate.build.isa: 'x86-64-v3' is a level of linux/amd64 but environment.platform is 'linux/arm64': remove build.isa"
    ],
    [
      'sourceDateEpoch missing',
      s => delete s.predicate.build.sourceDateEpoch,
      "predicate.build: missing required field 'sourceDateEpoch'"
    ],
    [
      'sourceDateEpoch negative',
      s => (s.predicate.build.sourceDateEpoch = -1),
      'predicate.build.sourceDateEpoch: expected an integer from 0'
    ],
    [
      'sourceDateEpoch fraction',
      s => (s.predicate.build.sourceDateEpoch = 1.5),
      'predicate.build.sourceDateEpoch: expected an integer, got 1.5'
    ],
    [
      'sourceDateEpoch unsafe',
      s => (s.predicate.build.sourceDateEpoch = 2 ** 53),
      'predicate.build.sourceDateEpoch: expected an integer, got 9007199254740992'
    ],
    [
      'sourceDateEpoch string',
      s => (s.predicate.build.sourceDateEpoch = '1700000000'),
      'predicate.build.sourceDateEpoch: expected an integer, got a string'
    ],
    [
      'outputs empty',
      s => (s.predicate.build.outputs = []),
      'predicate.build.outputs: expected a non-empty array'
    ],
    [
      'outputs ..',
      s => (s.predicate.build.outputs = ['a', '../etc/passwd']),
      "predicate.build.outputs[1]: '..' segment not allowed"
    ],
    [
      'outputs absolute',
      s => (s.predicate.build.outputs = ['/out/a']),
      'predicate.build.outputs[0]: absolute path not allowed'
    ],
    [
      'outputs dot',
      s => (s.predicate.build.outputs = ['.']),
      "predicate.build.outputs[0]: '.' segment not allowed"
    ],
    [
      'outputs duplicate',
      s => (s.predicate.build.outputs = ['a', 'b', 'a']),
      "predicate.build.outputs[2]: duplicate output 'a'"
    ],
    [
      'workdir absolute',
      s => (s.predicate.build.workdir = '/etc'),
      'predicate.build.workdir: absolute path not allowed'
    ],
    [
      'workdir ..',
      s => (s.predicate.build.workdir = '..'),
      "predicate.build.workdir: '..' segment not allowed"
    ],
    [
      'network',
      s => (s.predicate.build.network = 'host'),
      "predicate.build.network: expected one of 'none', 'bridge', got 'host'"
    ],
    [
      'timeoutSeconds zero',
      s => (s.predicate.build.timeoutSeconds = 0),
      'predicate.build.timeoutSeconds: expected an integer from 1'
    ],
    [
      'cpus zero',
      s => (s.predicate.build.cpus = 0),
      'predicate.build.cpus: expected an integer from 1 to 1024, got 0'
    ],
    [
      'cpus too many',
      s => (s.predicate.build.cpus = 4096),
      'predicate.build.cpus: expected an integer from 1 to 1024, got 4096'
    ],
    [
      'gpus',
      s => (s.predicate.build.gpus = '0,1'),
      "predicate.build.gpus: expected one of 'none', 'all', got '0,1'"
    ],
    [
      'unknown build field',
      s => (s.predicate.build.privileged = true),
      'predicate.build.privileged: unknown field inside build'
    ]
  ]

  it.each(rules)('%s', (_, change, message) => expectRejected(change, message))

  it('rejects a statement that is not an object', () => {
    expect(() => parseStatement(encode([]))).toThrow('statement: expected an object, got an array')
  })

  it('rejects duplicate keys deep inside the statement, naming their path', () => {
    const text = JSON.stringify(baseStatement()).replace(
      '"command":',
      '"command": ["evil"], "command":'
    )
    expect(() => parseStatement(new TextEncoder().encode(text))).toThrow(
      "statement: predicate.build: duplicate key 'command'"
    )
  })
})

describe('createStatement', () => {
  const input = {
    sourceUri: 'git+https://github.com/acme/m',
    gitCommit: COMMIT,
    dependencies: [{ name: 'requirements.lock', sha256: HEX('a') }],
    dataset: { treeSha256: HEX('b') },
    image: { uri: 'oci://ghcr.io/acme/trainer', sha256: HEX('c') },
    build: { command: ['python3', 'train.py'], sourceDateEpoch: 1700000000, outputs: ['w.npy'] }
  }

  it('writes 2-space JSON with a newline that parses back to the same ledger', () => {
    const bytes = createStatement(input)
    const text = new TextDecoder().decode(bytes)
    expect(text.endsWith('}\n')).toBe(true)
    expect(text).toBe(`${JSON.stringify(JSON.parse(text), null, 2)}\n`)
    const ledger = parseStatement(bytes)
    expect(ledger.source).toEqual({ uri: input.sourceUri, gitCommit: COMMIT })
    expect(ledger.dependencies).toEqual(input.dependencies)
    expect(ledger.dataset).toEqual({ treeSha256: HEX('b') })
    expect(ledger.environment.platform).toBe('linux/amd64')
    expect(ledger.build.outputs).toEqual(['w.npy'])
    const doc = JSON.parse(text)
    expect(doc.subject).toEqual([
      { name: 'source', uri: input.sourceUri, digest: { gitCommit: COMMIT } }
    ])
  })

  it('is deterministic', () => {
    expect(Buffer.from(createStatement(input))).toEqual(Buffer.from(createStatement(input)))
  })

  it('refuses what verifiers would reject, naming the path', () => {
    expect(() =>
      createStatement({ ...input, build: { ...input.build, outputs: ['../x'] } })
    ).toThrow("predicate.build.outputs[0]: '..' segment not allowed")
  })
})
