// Rebuild attestations end to end (PROTOCOL.md section 8): the bundled action (node dist/index.js)
// rebuilds a published model for real in Docker and signs a VSA, which this test checks on its
// own (node:crypto Ed25519 over the PAE, every field); then consumers accept the model on the
// word of k rebuilders, through the bundle and the CLI, and every refusal is named.
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync
} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  FILE_COMMANDS_DIR,
  runBundledAction,
  type BundledActionResult
} from '../helpers/action-runner.js'
import { cli } from '../helpers/cli.js'
import { buildBusyboxImage, describeDocker } from '../helpers/docker.js'
import { publishModel, type PublishedModel } from '../helpers/fixture.js'
import { ok, startServer, type TestServer } from '../helpers/http-server.js'
import { parsePrivateKey, parsePublicKey } from '../../src/protocol/keys.js'
import { formatEntry } from '../../src/tlog/entry.js'
import { proveEntry } from '../../src/tlog/prove.js'
import { directorySource } from '../../src/tlog/source.js'
import { appendEntries, initLog } from '../../src/tlog/writer.js'

const PAYLOAD_TYPE = 'application/vnd.in-toto+json'
const WORKFLOW_REF = 'acme/rebuilder/.github/workflows/rebuild.yml@refs/heads/main'
const DEFAULT_VERIFIER_ID = `https://github.com/${WORKFLOW_REF}`
const SECOND_VERIFIER_ID = 'https://rebuilder-two.example/verify-model'

interface Rebuilder {
  privateKeyPath: string
  privateKeyPem: string
  publicKeyPem: string
  keyId: string
}

interface Envelope {
  payloadType: string
  payload: string
  signatures: { keyid?: string; sig: string }[]
}

/** DSSE PAE, written here from the spec rather than taken from src/protocol. */
function pae(type: string, body: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${body.length} `),
    body
  ])
}

/** Checks a VSA file independently of src/: its signature by `rebuilder`; returns the statement. */
function openVsa(file: string, rebuilder: Rebuilder): Record<string, unknown> {
  const envelope = JSON.parse(readFileSync(file, 'utf8')) as Envelope
  expect(Object.keys(envelope).sort()).toEqual(['payload', 'payloadType', 'signatures'])
  expect(envelope.payloadType).toBe(PAYLOAD_TYPE)
  expect(envelope.signatures).toHaveLength(1)
  expect(envelope.signatures[0].keyid).toBe(rebuilder.keyId)
  const body = Buffer.from(envelope.payload, 'base64')
  const signature = Buffer.from(envelope.signatures[0].sig, 'base64')
  const publicKey = createPublicKey(rebuilder.publicKeyPem)
  expect(verify(null, pae(PAYLOAD_TYPE, body), publicKey, signature)).toBe(true)
  // The signature covers these bytes and no others.
  const flipped = Buffer.from(body)
  flipped[10] ^= 1
  expect(verify(null, pae(PAYLOAD_TYPE, flipped), publicKey, signature)).toBe(false)
  return JSON.parse(body.toString('utf8'))
}

/** Section 8's statement, field by field. */
function expectedStatement(facts: {
  root: string
  verifierId: string
  resourceUri: string
  sbaUri: string
  attestationDigest: string
}) {
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'model', digest: { treeSha256: facts.root } }],
    predicateType: 'https://slsa.dev/verification_summary/v1',
    predicate: {
      verifier: { id: facts.verifierId },
      timeVerified: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/),
      resourceUri: facts.resourceUri,
      policy: { uri: 'https://openclaw.dev/verify-model/policy/rebuild/v1' },
      inputAttestations: [{ uri: facts.sbaUri, digest: { sha256: facts.attestationDigest } }],
      verificationResult: 'PASSED',
      verifiedLevels: ['VERIFY_MODEL_REBUILT']
    }
  }
}

/** A VSA signed by hand (node:crypto), from a statement object: for the refused cases. */
function signStatement(statement: unknown, rebuilder: Rebuilder): string {
  const body = Buffer.from(JSON.stringify(statement))
  const sig = sign(null, pae(PAYLOAD_TYPE, body), createPrivateKey(rebuilder.privateKeyPem))
  return JSON.stringify({
    payloadType: PAYLOAD_TYPE,
    payload: body.toString('base64'),
    signatures: [{ keyid: rebuilder.keyId, sig: sig.toString('base64') }]
  })
}

describeDocker('rebuild attestations through the bundled action and the CLI', () => {
  let dir: string
  let server: TestServer
  let published: PublishedModel
  let capability: string
  let attestationDigest: string
  const rebuilders: Rebuilder[] = []
  /** The VSAs the rebuilds below sign: [rebuilder 1's, rebuilder 2's]. */
  const vsas: string[] = []

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e2e-vsa-'))
    server = await startServer()
    published = await publishModel(path.join(dir, 'publisher'), {
      image: await buildBusyboxImage()
    })
    server.route('/model.sba.json', ok(readFileSync(published.sbaPath)))
    for (const name of ['one', 'two', 'stranger']) {
      const prefix = path.join(dir, name)
      const made = await cli('keygen', '--out', prefix)
      expect(made.code).toBe(0)
      rebuilders.push({
        privateKeyPath: `${prefix}.key`,
        privateKeyPem: readFileSync(`${prefix}.key`, 'utf8'),
        publicKeyPem: readFileSync(`${prefix}.pub`, 'utf8'),
        keyId: made.stdout.trim()
      })
    }
    const computed = await cli(
      'capability',
      '--sba',
      published.sbaPath,
      '--public-key',
      published.publicKeyPath,
      '--model',
      published.modelDir,
      '--json'
    )
    expect(computed.code).toBe(0)
    ;({ capability, attestationDigest } = JSON.parse(computed.stdout))
    expect(attestationDigestOf(JSON.parse(readFileSync(published.sbaPath, 'utf8')))).toBe(
      attestationDigest
    )
  }, 180_000)

  afterAll(async () => {
    await server?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const action = (inputs: Record<string, string>, env?: Record<string, string>) =>
    runBundledAction(
      { attestation: published.sbaPath, 'public-key': published.publicKey, ...inputs },
      { baseDir: dir, env }
    )

  it('verify with attest-key: verified, and a VSA any Ed25519 verifier checks (verifier-id from the workflow)', async () => {
    const [one] = rebuilders
    const started = Math.floor(Date.now() / 1000) * 1000
    const run = await action(
      {
        model: published.modelDir,
        dataset: published.datasetDir,
        'attest-key': one.privateKeyPem
      },
      { GITHUB_SERVER_URL: 'https://github.com', GITHUB_WORKFLOW_REF: WORKFLOW_REF }
    )
    expectExit(run, 0)
    expect(run.outputs).toMatchObject({ result: 'verified', capability })
    const file = run.outputs['rebuild-attestation']
    expect(path.dirname(file)).toBe(run.runnerTemp)
    expect(run.report!.rebuildAttestation).toBe(file)
    const statement = openVsa(file, one)
    expect(statement).toEqual(
      expectedStatement({
        root: published.modelRoot,
        verifierId: DEFAULT_VERIFIER_ID,
        resourceUri: `urn:openclaw:model:treeSha256:${published.modelRoot}`,
        sbaUri: 'urn:openclaw:sba',
        attestationDigest
      })
    )
    const time = Date.parse((statement.predicate as { timeVerified: string }).timeVerified)
    expect(time).toBeGreaterThanOrEqual(started)
    expect(time).toBeLessThanOrEqual(Date.now())
    // The key is masked before anything is logged, line by line, and never printed.
    const body = one.privateKeyPem.split('\n')[1]
    const masks = run.commands.filter(c => c.command === 'add-mask').map(c => c.message)
    expect(masks).toEqual(expect.arrayContaining([body]))
    expect(run.stdout.indexOf('::add-mask::')).toBeLessThan(run.stdout.indexOf('::group::'))
    const unmasked = run.stdout
      .split('\n')
      .filter(line => !line.startsWith('::add-mask::'))
      .join('\n')
    expect(unmasked).not.toContain(body)
    expect(run.stderr).not.toContain(body)
    expect(run.summary).not.toContain(body)
    expect(JSON.stringify(run.report)).not.toContain(body)
    vsas[0] = readFileSync(file, 'utf8')
  })

  it('reproduce with attest-key and the SBA from a URL: the VSA names the SBA URL and the rebuilt root', async () => {
    const [, two] = rebuilders
    const run = await action({
      mode: 'reproduce',
      attestation: `${server.url}/model.sba.json`,
      dataset: published.datasetDir,
      'attest-key': two.privateKeyPem,
      'verifier-id': SECOND_VERIFIER_ID
    })
    expectExit(run, 0)
    expect(run.outputs.result).toBe('reproduced')
    expect(openVsa(run.outputs['rebuild-attestation'], two)).toEqual(
      expectedStatement({
        root: published.modelRoot,
        verifierId: SECOND_VERIFIER_ID,
        resourceUri: `urn:openclaw:model:treeSha256:${published.modelRoot}`,
        sbaUri: `${server.url}/model.sba.json`,
        attestationDigest
      })
    )
    vsas[1] = readFileSync(run.outputs['rebuild-attestation'], 'utf8')
  })

  it('a failing verdict (tampered download) signs nothing', async () => {
    const tampered = path.join(dir, 'tampered-model')
    cpSync(published.modelDir, tampered, { recursive: true })
    writeFileSync(path.join(tampered, 'weights.bin'), 'not the weights\n')
    const run = await action({
      model: tampered,
      dataset: published.datasetDir,
      'attest-key': rebuilders[0].privateKeyPem,
      'verifier-id': DEFAULT_VERIFIER_ID
    })
    expectExit(run, 1)
    expect(run.outputs.result).toBe('mismatch')
    expect(run.outputs['rebuild-attestation']).toBeUndefined()
    expect(run.report!.rebuildAttestation).toBeUndefined()
    expect(readdirSync(run.runnerTemp).sort()).toEqual(
      [FILE_COMMANDS_DIR, path.basename(run.outputs.report)].sort()
    )
  })

  it('attested, 2 of 2 distinct rebuilders (one from a URL): verified with the capability a rebuild gives, no build', async () => {
    const files = vsas.map((vsa, i) => {
      const file = path.join(dir, `rebuilder-${i + 1}.vsa.json`)
      writeFileSync(file, vsa)
      return file
    })
    server.route('/r2.vsa.json', ok(Buffer.from(vsas[1])))
    const run = await action({
      mode: 'attested',
      model: published.modelDir,
      'rebuild-attestations': `${files[0]}\n${server.url}/r2.vsa.json`,
      'rebuilder-keys': rebuilders[0].publicKeyPem + rebuilders[1].publicKeyPem,
      'rebuilder-threshold': '2'
    })
    expectExit(run, 0)
    expect(run.outputs).toMatchObject({
      result: 'verified',
      capability,
      'model-digest': published.modelRoot,
      'attestation-digest': attestationDigest
    })
    expect(run.outputs['reproduced-digest']).toBeUndefined()
    expect(run.outputs['rebuild-attestation']).toBeUndefined()
    const report = run.report!
    expect(report.mode).toBe('attested')
    expect(report.build).toBeUndefined()
    expect(report.checks.map(c => [c.name, c.status])).toEqual([
      ['signature', 'pass'],
      ['hash', 'pass'],
      ['rebuild-attestations', 'pass']
    ])
    expect(report.rebuilderThreshold).toBe(2)
    expect(report.rebuildAttestations).toEqual([
      expect.objectContaining({
        source: files[0],
        counted: true,
        why: '',
        keyIds: [rebuilders[0].keyId],
        verifierId: DEFAULT_VERIFIER_ID
      }),
      expect.objectContaining({
        source: `${server.url}/r2.vsa.json`,
        counted: true,
        why: '',
        keyIds: [rebuilders[1].keyId],
        verifierId: SECOND_VERIFIER_ID
      })
    ])
    expect(server.requests('/r2.vsa.json')).toBe(1)
    expect(run.summary.startsWith('<h1>✅ verify-model: verified</h1>')).toBe(true)
    expect(run.summary).toContain('<h2>Rebuild attestations (2 counted, threshold 2)</h2>')
    expect(run.stdout).not.toMatch(/verify-model-[0-9a-f]{12}: /)
  })

  it('attested: one key twice, a stranger, FAILED, another policy, level, SBA or model: each refused and named', async () => {
    const [one, two, stranger] = rebuilders
    const good = JSON.parse(
      Buffer.from((JSON.parse(vsas[0]) as Envelope).payload, 'base64').toString()
    )
    const variant = (change: (statement: typeof good) => void) => {
      const statement = structuredClone(good)
      change(statement)
      return statement
    }
    const cases: [string, string, string][] = [
      ['counts', vsas[0], ''],
      ['same key again', signStatement(good, one), 'duplicate'],
      ['stranger', signStatement(good, stranger), 'signature'],
      [
        'failed',
        signStatement(
          variant(s => (s.predicate.verificationResult = 'FAILED')),
          one
        ),
        'verificationResult'
      ],
      [
        'policy',
        signStatement(
          variant(s => (s.predicate.policy.uri = 'https://example.org/p')),
          one
        ),
        'policy'
      ],
      [
        'level',
        signStatement(
          variant(s => (s.predicate.verifiedLevels = ['SLSA_BUILD_LEVEL_3'])),
          one
        ),
        'verifiedLevels'
      ],
      [
        'sba',
        signStatement(
          variant(s => (s.predicate.inputAttestations[0].digest.sha256 = '0'.repeat(64))),
          one
        ),
        'inputAttestations'
      ],
      [
        'model',
        signStatement(
          variant(s => (s.subject[0].digest.treeSha256 = '1'.repeat(64))),
          one
        ),
        'subject'
      ],
      ['missing', '', 'fetch']
    ]
    const files = cases.map(([name, text]) => {
      const file = path.join(dir, `case-${name}.vsa.json`)
      if (text !== '') writeFileSync(file, text)
      return file
    })
    const run = await action({
      mode: 'attested',
      model: published.modelDir,
      'rebuild-attestations': files.join('\n'),
      'rebuilder-keys': one.publicKeyPem + two.publicKeyPem,
      'rebuilder-threshold': '2'
    })
    expectExit(run, 1)
    expect(run.outputs.capability).toBeUndefined()
    const report = run.report!
    expect(
      report.rebuildAttestations!.map(v => [v.source, v.counted, v.why.split(':')[0]])
    ).toEqual(cases.map(([, , why], i) => [files[i], why === '', why]))
    // A missing file could still have counted: the verdict says the inputs were not all there.
    expect(report.result).toBe('unverifiable')
    expect(report.reason).toMatch(
      /^rebuild attestations: 1 distinct trusted rebuilder key\(s\) with a counting attestation, threshold is 2; could not fetch #9 /
    )
    expect(report.checks.at(-1)).toMatchObject({ name: 'rebuild-attestations', status: 'fail' })
    for (const verdict of report.rebuildAttestations!.filter(v => !v.counted)) {
      expect(run.summary).toContain(verdict.why.split(':')[0])
    }
    expect(run.summary).toContain('<h2>Rebuild attestations (1 counted, threshold 2)</h2>')

    // Without the missing one, the same set is invalid.
    const again = await action({
      mode: 'attested',
      model: published.modelDir,
      'rebuild-attestations': files.slice(0, -1).join('\n'),
      'rebuilder-keys': one.publicKeyPem + two.publicKeyPem,
      'rebuilder-threshold': '2'
    })
    expectExit(again, 1)
    expect(again.outputs.result).toBe('invalid')
    expect(again.report!.reason).toContain('refused #2 ')
  })

  it('attested with a model that differs from what the rebuilders attest → invalid (subject)', async () => {
    const other = path.join(dir, 'other-model')
    cpSync(published.modelDir, other, { recursive: true })
    writeFileSync(path.join(other, 'config.json'), '{}\n')
    const file = path.join(dir, 'one.vsa.json')
    writeFileSync(file, vsas[0])
    const run = await action({
      mode: 'attested',
      model: other,
      'rebuild-attestations': file,
      'rebuilder-keys': rebuilders[0].publicKeyPem
    })
    expectExit(run, 1)
    expect(run.outputs.result).toBe('invalid')
    expect(run.report!.rebuildAttestations![0].why).toMatch(/^subject: it attests treeSha256 /)
  })

  it('attested with log-key: each counted attestation needs its own valid log proof, in order', async () => {
    const logKey = parsePrivateKey(rebuilders[2].privateKeyPem)
    const logDir = path.join(dir, 'log')
    const vkey = await initLog(logDir, 'example.org/rebuild-log', logKey)
    const rawOf = (pem: string) => parsePublicKey(pem).raw
    const entries = [
      formatEntry(attestationDigest, [rawOf(published.publicKey)]),
      ...vsas.map((vsa, i) =>
        formatEntry(attestationDigestOf(JSON.parse(vsa)), [rawOf(rebuilders[i].publicKeyPem)])
      )
    ]
    await appendEntries(logDir, logKey, entries)
    const proofs = await Promise.all(
      entries.map(async (entry, i) => {
        const file = path.join(dir, `entry-${i}.tlog-proof`)
        writeFileSync(file, (await proveEntry(directorySource(logDir), entry)).proof)
        return file
      })
    )
    const files = vsas.map((vsa, i) => {
      const file = path.join(dir, `logged-${i + 1}.vsa.json`)
      writeFileSync(file, vsa)
      return file
    })
    const attested = (rebuildProofs: string[]) =>
      action({
        mode: 'attested',
        model: published.modelDir,
        'log-key': vkey,
        'log-proof': proofs[0],
        'rebuild-attestations': files.join('\n'),
        'rebuild-log-proofs': rebuildProofs.join('\n'),
        'rebuilder-keys': rebuilders[0].publicKeyPem + rebuilders[1].publicKeyPem,
        'rebuilder-threshold': '2'
      })

    const run = await attested([proofs[1], proofs[2]])
    expectExit(run, 0)
    expect(run.outputs).toMatchObject({ result: 'verified', capability, 'log-index': '0' })
    expect(run.report!.rebuildAttestations!.map(v => [v.counted, v.logIndex])).toEqual([
      [true, 1],
      [true, 2]
    ])

    // Swapped: each proof logs the other attestation, so neither counts.
    const swapped = await attested([proofs[2], proofs[1]])
    expectExit(swapped, 1)
    expect(swapped.outputs.result).toBe('invalid')
    expect(swapped.report!.rebuildAttestations!.map(v => v.why.split(':')[0])).toEqual([
      'logProof',
      'logProof'
    ])
    expect(swapped.report!.rebuildAttestations![0].why).toContain(
      'log proof entry: it logs attestation'
    )
  })

  it('the CLI: verify --attest-key signs, accept takes 2 of 2, a failing accept exits 1 and names why', async () => {
    const [one, two] = rebuilders
    const out = path.join(dir, 'cli.vsa.json')
    const cliVerify = (model: string, attestationOut: string, ...extra: string[]) =>
      cli(
        'verify',
        '--sba',
        published.sbaPath,
        '--public-key',
        published.publicKeyPath,
        '--model',
        model,
        '--dataset',
        published.datasetDir,
        '--attest-key',
        one.privateKeyPath,
        '--verifier-id',
        'https://cli.example/rebuilder',
        '--attestation-out',
        attestationOut,
        ...extra
      )
    const verified = await cliVerify(published.modelDir, out, '--json')
    expect(verified.code).toBe(0)
    expect(JSON.parse(verified.stdout)).toMatchObject({
      result: 'verified',
      rebuildAttestation: out
    })
    expect(openVsa(out, one)).toEqual(
      expectedStatement({
        root: published.modelRoot,
        verifierId: 'https://cli.example/rebuilder',
        resourceUri: `urn:openclaw:model:treeSha256:${published.modelRoot}`,
        sbaUri: 'urn:openclaw:sba',
        attestationDigest
      })
    )
    const failedOut = path.join(dir, 'cli-failed.vsa.json')
    const failed = await cliVerify(path.join(dir, 'tampered-model'), failedOut)
    expect(failed.code).toBe(1)
    expect(failed.stdout).toMatch(/^mismatch: /)
    expect(existsSync(failedOut)).toBe(false)
    const second = path.join(dir, 'cli-two.vsa.json')
    writeFileSync(second, vsas[1])
    const accept = (...extra: string[]) =>
      cli(
        'accept',
        '--sba',
        published.sbaPath,
        '--public-key',
        published.publicKeyPath,
        '--model',
        published.modelDir,
        '--rebuilder-key',
        path.join(dir, 'one.pub'),
        '--rebuilder-key',
        path.join(dir, 'two.pub'),
        ...extra
      )
    const accepted = await accept(
      '--rebuild-attestation',
      out,
      '--rebuild-attestation',
      second,
      '--rebuilder-threshold',
      '2',
      '--json'
    )
    expect(accepted.code).toBe(0)
    expect(JSON.parse(accepted.stdout)).toMatchObject({
      mode: 'attested',
      result: 'verified',
      capability
    })
    const refused = await accept(
      '--rebuild-attestation',
      out,
      '--rebuild-attestation',
      out,
      '--rebuilder-threshold',
      '2'
    )
    expect(refused.code).toBe(1)
    expect(refused.stdout).toMatch(
      /^invalid: rebuild attestations: 1 distinct trusted rebuilder key/
    )
    expect(refused.stdout).toContain('attestation #2 refused')
    expect(refused.stdout).toContain('duplicate: its key(s)')
    const usage = await accept('--rebuild-attestation', out, '--rebuilder-threshold', '3')
    expect(usage.code).toBe(2)
    expect(usage.stderr).toContain(
      '--rebuilder-threshold 3 is more than the 2 distinct --rebuilder-key value(s)'
    )
    expect(two.keyId).not.toBe(one.keyId)
  })
})

function expectExit(run: BundledActionResult, code: number): void {
  if (run.exitCode !== code) {
    throw new Error(
      `exit ${run.exitCode}, expected ${code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`
    )
  }
  expect(run.stderr).not.toMatch(/ERR_|SyntaxError|TypeError|unexpectedly/)
}

/** The attestation digest, sha256 over the PAE, computed here. */
function attestationDigestOf(envelope: Envelope): string {
  return createHash('sha256')
    .update(pae(envelope.payloadType, Buffer.from(envelope.payload, 'base64')))
    .digest('hex')
}
