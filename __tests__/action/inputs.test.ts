import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { InputError, parseInputs, parseModelUrls } from '../../src/action/inputs.js'
import { vectorsDir } from '../helpers/paths.js'

const keys = JSON.parse(readFileSync(path.join(vectorsDir, 'keys.json'), 'utf8')).keys
const env = { RUNNER_TEMP: '/tmp/runner' }

function inputs(values: Record<string, string>) {
  return (name: string) => values[name] ?? ''
}

const base = { attestation: 'model.sba.json', 'public-key': keys[0].publicPem, model: 'model' }

describe('parseInputs', () => {
  it('applies the defaults of action.yml', () => {
    const parsed = parseInputs(inputs(base), env)
    expect(parsed.mode).toBe('verify')
    expect(parsed.threshold).toBe(1)
    expect(parsed.allowNetwork).toBe(false)
    expect(parsed.cache).toBe(true)
    expect(parsed.showSummary).toBe(true)
    expect(parsed.workingDirectory).toBe('/tmp/runner')
    expect(parsed.attestation).toEqual({ kind: 'path', path: path.resolve('model.sba.json') })
    expect(parsed.model).toBe(path.resolve('model'))
    expect(parsed.publicKeys.map(k => k.keyId)).toEqual([keys[0].keyid])
  })

  it('reads several keys, PEM blocks and raw forms, one per line', () => {
    const parsed = parseInputs(
      inputs({
        ...base,
        'public-key': `${keys[0].publicPem}\n${keys[1].publicRawHex}\n${keys[2].publicRawBase64}\n`,
        threshold: '2'
      }),
      env
    )
    expect(parsed.publicKeys.map(k => k.keyId)).toEqual(keys.map((k: { keyid: string }) => k.keyid))
    expect(parsed.threshold).toBe(2)
  })

  it.each([
    [{ attestation: '' }, /Input required and not supplied: attestation/],
    [{ 'public-key': '' }, /Input required and not supplied: public-key/],
    [{ 'public-key': 'not a key' }, /public-key/],
    [{ threshold: '0' }, /threshold must be a whole number/],
    [{ threshold: '2' }, /threshold 2 is more than the 1 public key/],
    [{ mode: 'fast' }, /mode must be one of verify, reproduce, check/],
    [{ model: '' }, /mode verify needs the downloaded model/],
    [{ mode: 'reproduce' }, /mode reproduce compares nothing/],
    [{ mode: 'check' }, /mode check needs expected-capability/],
    [{ 'expected-capability': 'ocap1:XYZ' }, /expected-capability must be ocap1:/],
    [{ 'allow-network': 'yes' }, /allow-network must be true or false/],
    [{ 'timeout-minutes': '1.5' }, /timeout-minutes must be a whole number/],
    [{ 'model-url': 'https://h/x.bin' }, /either model or model-url/],
    [{ attestation: 'ftp://host/x.json' }, /attestation must be a path or an https:\/\/ URL/]
  ])('rejects %p', (override, message) => {
    expect(() => parseInputs(inputs({ ...base, ...override }), env)).toThrow(InputError)
    expect(() => parseInputs(inputs({ ...base, ...override }), env)).toThrow(message)
  })

  it('converts timeout-minutes to a cap in seconds and reads URLs', () => {
    const parsed = parseInputs(
      inputs({ ...base, 'timeout-minutes': '5', attestation: 'https://example.org/a.json' }),
      env
    )
    expect(parsed.timeoutCapSeconds).toBe(300)
    expect(parsed.attestation).toEqual({ kind: 'url', url: 'https://example.org/a.json' })
  })
})

describe('parseModelUrls', () => {
  it('names files by name=url or by the URL path', () => {
    expect(
      parseModelUrls('w.bin=https://h/x?sig=1\n\n# comment\nhttps://h/dir/config.json\n')
    ).toEqual([
      { name: 'w.bin', url: 'https://h/x?sig=1' },
      { name: 'config.json', url: 'https://h/dir/config.json' }
    ])
  })
  it.each([
    ['../evil=https://h/x', /file name '..\/evil'/],
    ['https://h/', /file name ''/],
    ['a=https://h/1\na=https://h/2', /appears twice/],
    ['not a url', /is not a URL/],
    ['https://h/%E0', /cannot read a file name from/]
  ])('rejects %p', (text, message) => {
    expect(() => parseModelUrls(text)).toThrow(message)
  })
})

describe('parseInputs: the transparency-log inputs', () => {
  const tlog = JSON.parse(readFileSync(path.join(vectorsDir, 'tlog.json'), 'utf8'))
  const logKey = tlog.log.vkey as string
  const witnessKeys = (tlog.witnesses as { vkey: string }[]).map(w => w.vkey)

  it('requires nothing without log-key, and a proof with it', () => {
    expect(parseInputs(inputs(base), env).log).toBeUndefined()
    expect(() => parseInputs(inputs({ ...base, 'log-key': logKey }), env)).toThrow(
      new InputError(
        'log-key is set, so a log proof is required: set log-proof (path or https:// URL of the .tlog-proof)'
      )
    )
    expect(() => parseInputs(inputs({ ...base, 'log-proof': 'p.tlog-proof' }), env)).toThrow(
      /log-proof, witness-keys and witness-threshold need log-key/
    )
  })

  it('parses the policy: witness keys one per line, the threshold checked against them', () => {
    const parsed = parseInputs(
      inputs({
        ...base,
        'log-key': logKey,
        'log-proof': 'https://log.example.org/p.tlog-proof',
        'witness-keys': `${witnessKeys.join('\n')}\n`,
        'witness-threshold': '2'
      }),
      env
    )
    expect(parsed.log).toEqual({
      proof: { kind: 'url', url: 'https://log.example.org/p.tlog-proof' },
      policy: { logKey, witnessKeys, witnessThreshold: 2 }
    })
    const withLog = { ...base, 'log-key': logKey, 'log-proof': 'p.tlog-proof' }
    expect(() =>
      parseInputs(
        inputs({ ...withLog, 'witness-keys': witnessKeys[0], 'witness-threshold': '2' }),
        env
      )
    ).toThrow(/witness threshold 2 exceeds the 1 distinct witness key\(s\) given/)
    expect(() => parseInputs(inputs({ ...withLog, 'witness-threshold': '-1' }), env)).toThrow(
      /witness-threshold must be a whole number ≥ 0; got '-1'/
    )
    expect(() => parseInputs(inputs({ ...withLog, 'log-key': witnessKeys[0] }), env)).toThrow(
      /log key: signature type 0x04 is not the one expected/
    )
    expect(() => parseInputs(inputs({ ...withLog, 'log-proof': 'ftp://x/p' }), env)).toThrow(
      /log-proof must be a path or an https:\/\/ URL/
    )
  })
})
