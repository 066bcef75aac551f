import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { InputError, parseInputs, secretLines } from '../../src/action/inputs.js'
import { vectorsDir } from '../helpers/paths.js'

const keys = JSON.parse(readFileSync(path.join(vectorsDir, 'keys.json'), 'utf8')).keys
const env = { RUNNER_TEMP: '/tmp/runner' }
const logVkey = JSON.parse(readFileSync(path.join(vectorsDir, 'tlog.json'), 'utf8')).log.vkey
const workflowEnv = {
  ...env,
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_WORKFLOW_REF: 'acme/rebuilder/.github/workflows/rebuild.yml@refs/heads/main'
}
const base = { attestation: 'model.sba.json', 'public-key': keys[0].publicPem, model: 'model' }
const attested = {
  ...base,
  mode: 'attested',
  'rebuild-attestations': 'one.vsa.json\nhttps://r2.example/vsa.json\n',
  'rebuilder-keys': `${keys[1].publicRawHex}\n${keys[2].publicPem}`,
  'rebuilder-threshold': '1'
}
const parse = (values: Record<string, string>, environment: NodeJS.ProcessEnv = env) =>
  parseInputs(name => values[name] ?? '', environment)

describe('attest-key and verifier-id', () => {
  it('the verifier id defaults to the workflow (server URL and workflow ref)', () => {
    const parsed = parse({ ...base, 'attest-key': keys[1].privatePkcs8Pem }, workflowEnv)
    expect(parsed.attest?.key.publicKey.keyId).toBe(keys[1].keyid)
    expect(parsed.attest?.verifierId).toBe(
      'https://github.com/acme/rebuilder/.github/workflows/rebuild.yml@refs/heads/main'
    )
  })

  it('an explicit verifier-id wins; without attest-key nothing is signed', () => {
    const given = parse(
      { ...base, 'attest-key': keys[1].privatePkcs8Pem, 'verifier-id': 'https://r.example/x' },
      workflowEnv
    )
    expect(given.attest?.verifierId).toBe('https://r.example/x')
    expect(parse(base).attest).toBeUndefined()
  })

  it.each([
    [
      { 'attest-key': keys[1].privatePkcs8Pem },
      env,
      /^verifier-id: not given, and GITHUB_SERVER_URL/
    ],
    [
      { 'attest-key': keys[1].privatePkcs8Pem, 'verifier-id': 'no uri' },
      env,
      /^verifier-id: expected a URI/
    ],
    [
      { 'attest-key': keys[1].publicPem },
      workflowEnv,
      /^attest-key: not an Ed25519 PKCS#8 private key/
    ],
    [{ 'verifier-id': 'https://r.example/' }, env, /^verifier-id is only used with attest-key/],
    [
      {
        'attest-key': keys[1].privatePkcs8Pem,
        mode: 'check',
        'expected-capability': `ocap1:${'0'.repeat(64)}`
      },
      workflowEnv,
      /^attest-key: mode check rebuilds nothing/
    ]
  ])('refuses %p', (override, environment, message) => {
    expect(() => parse({ ...base, ...override }, environment)).toThrow(InputError)
    expect(() => parse({ ...base, ...override }, environment)).toThrow(message)
  })

  it('never echoes the key in an error', () => {
    const broken = keys[1].privatePkcs8Pem.replace('MC4CAQAw', 'MC4CAQAx')
    expect(() => parse({ ...base, 'attest-key': broken }, workflowEnv)).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining(broken.split('\n')[1]) })
    )
  })

  it('masks every line of the key but the PEM armor, and the whole value', () => {
    const pem = keys[1].privatePkcs8Pem
    const lines = secretLines(pem)
    expect(lines[0]).toBe(pem)
    expect(lines.slice(1)).toEqual(pem.trim().split('\n').slice(1, -1))
    expect(secretLines('  \n')).toEqual([])
  })
})

describe('mode attested', () => {
  it('reads attestations (paths and URLs), rebuilder keys and the threshold', () => {
    const parsed = parse({ ...attested, 'rebuilder-threshold': '2' })
    expect(parsed.mode).toBe('attested')
    expect(parsed.rebuilds).toEqual({
      attestations: [
        { kind: 'path', path: path.resolve('one.vsa.json') },
        { kind: 'url', url: 'https://r2.example/vsa.json' }
      ],
      keys: expect.any(Array),
      threshold: 2,
      logProofs: []
    })
    expect(parsed.rebuilds!.keys.map(k => k.keyId)).toEqual([keys[1].keyid, keys[2].keyid])
  })

  it.each([
    [{ 'rebuild-attestations': '' }, /Input required and not supplied: rebuild-attestations/],
    [{ 'rebuilder-keys': '' }, /Input required and not supplied: rebuilder-keys/],
    [{ 'rebuilder-keys': 'nope' }, /^rebuilder-keys: /],
    [
      { 'rebuilder-threshold': '3' },
      /rebuilder-threshold 3 is more than the 2 distinct rebuilder key/
    ],
    [{ 'rebuilder-threshold': '0' }, /rebuilder-threshold must be a whole number/],
    [{ 'rebuild-attestations': 'ftp://x/y' }, /rebuild-attestations must be a path or an https/],
    [{ 'rebuild-log-proofs': 'one.tlog-proof' }, /^rebuild-log-proofs need log-key/],
    [
      { 'log-key': logVkey, 'log-proof': 'sba.tlog-proof', 'rebuild-log-proofs': 'one.tlog-proof' },
      /^rebuild-log-proofs: log-key is set, so each rebuild attestation needs its log proof: 1 proof\(s\) for 2 attestation\(s\)/
    ],
    [
      { 'log-key': logVkey, 'log-proof': 'sba.tlog-proof' },
      /^rebuild-log-proofs: log-key is set, so each rebuild attestation needs its log proof: 0 proof\(s\)/
    ],
    [{ model: '' }, /mode attested needs the downloaded model/],
    [{ mode: 'verify' }, /^rebuild-attestations is only used in mode attested/],
    [
      {
        mode: 'verify',
        'rebuild-attestations': '',
        'rebuilder-keys': '',
        'rebuilder-threshold': '2'
      },
      /^rebuilder-threshold is only used in mode attested/
    ]
  ])('refuses %p', (override, message) => {
    expect(() => parse({ ...attested, ...override })).toThrow(InputError)
    expect(() => parse({ ...attested, ...override })).toThrow(message)
  })

  it('with log-key, one rebuild log proof per attestation, in order', () => {
    const parsed = parse({
      ...attested,
      'log-key': logVkey,
      'log-proof': 'sba.tlog-proof',
      'rebuild-log-proofs': 'one.tlog-proof\nhttps://r2.example/vsa.tlog-proof'
    })
    expect(parsed.rebuilds!.logProofs).toEqual([
      { kind: 'path', path: path.resolve('one.tlog-proof') },
      { kind: 'url', url: 'https://r2.example/vsa.tlog-proof' }
    ])
  })

  it('counts a key given twice once for the threshold check', () => {
    expect(() =>
      parse({
        ...attested,
        'rebuilder-keys': `${keys[1].publicRawHex}\n${keys[1].publicPem}`,
        'rebuilder-threshold': '2'
      })
    ).toThrow(/more than the 1 distinct rebuilder key/)
  })
})
