import { describe, expect, it } from '@jest/globals'
import { parseStatement } from '../../src/protocol/ledger.js'

// Ledger paths (docs/protocol.md section 2): outputs, workdir and dependencies[].name stay below their
// root. __tests__/protocol/ledger.test.ts covers '..', absolute paths and '.' for all three, and
// NUL, backslash, empty and trailing-slash segments for dependencies; this table adds the
// combinations it leaves out.

const COMMIT = '4b825dc642cb6eb9a060e54bf8d69288fbee4904'

function statementWith(field: 'outputs' | 'workdir' | 'dependency', value: string): Uint8Array {
  const build: Record<string, unknown> = {
    command: ['sh', 'build.sh'],
    sourceDateEpoch: 1700000000,
    ...(field === 'outputs' ? { outputs: ['model.bin', value] } : {}),
    ...(field === 'workdir' ? { workdir: value } : {})
  }
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'source', digest: { gitCommit: COMMIT } }],
    predicateType: 'https://openclaw.dev/build-ledger/v1',
    predicate: {
      source: { uri: 'git+https://github.com/acme/m', digest: { gitCommit: COMMIT } },
      dependencies: [
        {
          name: field === 'dependency' ? value : 'requirements.lock',
          digest: { sha256: 'a'.repeat(64) }
        }
      ],
      environment: { uri: 'oci://ghcr.io/acme/trainer', digest: { sha256: 'c'.repeat(64) } },
      build
    }
  }
  return new TextEncoder().encode(JSON.stringify(statement))
}

const OUTPUT = 'predicate.build.outputs[1]'
const WORKDIR = 'predicate.build.workdir'
const DEPENDENCY = 'predicate.dependencies[0].name'

describe('ledger paths that leave their root or are ambiguous are invalid', () => {
  it.each([
    ['outputs', 'a\u0000b', `${OUTPUT}: NUL character not allowed`],
    ['outputs', 'weights\\model.bin', `${OUTPUT}: backslash not allowed (use /)`],
    ['outputs', '..\\..\\etc', `${OUTPUT}: backslash not allowed (use /)`],
    ['outputs', 'weights//model.bin', `${OUTPUT}: empty segment not allowed`],
    ['outputs', 'weights/', `${OUTPUT}: empty segment not allowed`],
    ['outputs', 'weights/../../x', `${OUTPUT}: '..' segment not allowed`],
    ['outputs', '', `${OUTPUT}: must not be empty`],
    ['workdir', 'train\u0000', `${WORKDIR}: NUL character not allowed`],
    ['workdir', 'train\\src', `${WORKDIR}: backslash not allowed (use /)`],
    ['workdir', 'train//src', `${WORKDIR}: empty segment not allowed`],
    ['workdir', 'train/', `${WORKDIR}: empty segment not allowed`],
    ['workdir', './train', `${WORKDIR}: '.' segment not allowed`],
    ['workdir', 'train/..', `${WORKDIR}: '..' segment not allowed`],
    ['workdir', '', `${WORKDIR}: must not be empty`],
    ['dependency', './requirements.lock', `${DEPENDENCY}: '.' segment not allowed`],
    ['dependency', '\\\\server\\share', `${DEPENDENCY}: backslash not allowed (use /)`],
    ['dependency', '//etc/passwd', `${DEPENDENCY}: absolute path not allowed`]
  ] as const)('%s %j', (field, value, message) => {
    expect(() => parseStatement(statementWith(field, value))).toThrow(
      expect.objectContaining({ verdict: 'invalid', message: expect.stringContaining(message) })
    )
  })

  it.each([
    ['outputs', 'weights/model.bin'],
    ['outputs', '..model'],
    ['workdir', '.'],
    ['workdir', 'train/src'],
    ['dependency', 'lock/.hidden']
  ] as const)('keeps the lawful %s %j', (field, value) => {
    expect(() => parseStatement(statementWith(field, value))).not.toThrow()
  })
})
