// The committed action bundle (dist/index.js) run exactly as the runner runs it, against a model
// published with the project's own CLI, the real Docker daemon and a loopback HTTP server.
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  FILE_COMMANDS_DIR,
  runBundledAction,
  type BundledActionResult
} from '../helpers/action-runner.js'
import { cli } from '../helpers/cli.js'
import { buildBusyboxImage, describeDocker } from '../helpers/docker.js'
import { BUILD_SCRIPT, publishModel, type PublishedModel } from '../helpers/fixture.js'
import { ok, startServer, type TestServer } from '../helpers/http-server.js'

/** Every capability-free output the action writes when the signature verified. */
const SIGNATURE_OUTPUTS = ['result', 'attestation-digest', 'key-ids', 'report']
const WRONG_CAPABILITY = `ocap1:${'0'.repeat(64)}`

/** Lines the build prints that the runner would obey if the action let them through unfenced. */
const FORGED_COMMANDS = [
  '::set-output name=capability::ocap1:forged',
  '::error::forged by the build',
  '::add-mask::verified',
  '##[set-output name=result;]forged',
  '::stop-commands::forged'
]
const BUILD_WITH_FORGED_LOG =
  FORGED_COMMANDS.map(line => `echo '${line}'`).join('\n') +
  '\n' +
  BUILD_SCRIPT +
  "printf 'a last line without its newline'\n"

describeDocker('the bundled action (node dist/index.js) as the runner runs it', () => {
  let dir: string
  let server: TestServer
  let published: PublishedModel
  /** What `verify-model capability` computes in-process for the published model. */
  let capability: string
  let attestationDigest: string

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e2e-action-'))
    server = await startServer()
    published = await publishModel(path.join(dir, 'publisher'), {
      image: await buildBusyboxImage(),
      datasetUri: `${server.url}/data.tar.gz`,
      buildScript: BUILD_WITH_FORGED_LOG
    })
    server.route('/model.sba.json', ok(readFileSync(published.sbaPath)))
    server.route('/data.tar.gz', ok(readFileSync(published.datasetArchive)))
    for (const name of published.outputs)
      server.route(`/weights/${name}`, ok(readFileSync(path.join(published.modelDir, name))))

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
    const facts = JSON.parse(computed.stdout)
    capability = facts.capability
    attestationDigest = facts.attestationDigest
    expect(facts.modelRoot).toBe(published.modelRoot)
  }, 120_000)

  afterAll(async () => {
    await server?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const action = (inputs: Record<string, string>, env?: Record<string, string>) =>
    runBundledAction(
      { attestation: published.sbaPath, 'public-key': published.publicKey, ...inputs },
      { baseDir: dir, env }
    )

  it('verify: the download equals the rebuild → verified, with the capability', async () => {
    const run = await action({ model: published.modelDir, dataset: published.datasetDir })

    expectExit(run, 0)
    expect(run.outputs).toEqual({
      result: 'verified',
      capability,
      'model-digest': published.modelRoot,
      'reproduced-digest': published.modelRoot,
      'attestation-digest': attestationDigest,
      'key-ids': published.keyId,
      report: expect.any(String)
    })
    expect(run.summary.startsWith('<h1>✅ verify-model: verified</h1>')).toBe(true)
    const report = run.report!
    expect(report).toMatchObject({
      schemaVersion: 1,
      mode: 'verify',
      result: 'verified',
      capability,
      source: { uri: `git+file://${published.sourceDir}`, commit: published.commit },
      reproduced: { root: published.modelRoot },
      downloaded: { root: published.modelRoot },
      build: { exitCode: 0 }
    })
    expect(report.checks.map(check => check.name)).toEqual([
      'signature',
      'source',
      'dependencies',
      'dataset',
      'image',
      'build',
      'outputs',
      'hash',
      'compare'
    ])
    expect(report.checks.every(check => check.status === 'pass')).toBe(true)
    expect(run.summary).toContain('<h2>Checks</h2>')
    for (const check of report.checks) expect(run.summary).toContain(`<td>${check.name}</td>`)
    expect(run.summary).toContain(`<code>${capability}</code>`)
    expect(run.summary).toContain(published.commit)
    expect(run.stdout).toContain(`verified: the download equals the rebuild`)
    // The build's log is shown, and none of the commands it printed is obeyed.
    for (const line of FORGED_COMMANDS) expect(run.stdout).toContain(`\n${line}\n`)
    expect(run.stdout).toContain('a last line without its newline')
    expectWorkflowCommands(run)
    expectCleanedUp(run, { containers: 1 })
  })

  it('reproduce: no download → reproduced, with the same capability', async () => {
    const run = await action({ mode: 'reproduce', dataset: published.datasetDir })

    expectExit(run, 0)
    expect(run.outputs).toEqual({
      result: 'reproduced',
      capability,
      'reproduced-digest': published.modelRoot,
      'attestation-digest': attestationDigest,
      'key-ids': published.keyId,
      report: expect.any(String)
    })
    expect(run.summary.startsWith('<h1>✅ verify-model: reproduced</h1>')).toBe(true)
    expect(run.report).toMatchObject({ mode: 'reproduce', result: 'reproduced', capability })
    expect(run.report!.downloaded).toBeUndefined()
    expect(run.report!.reproduced!.manifest.map(entry => entry.path).sort()).toEqual(
      [...published.outputs].sort()
    )
    expectCleanedUp(run, { containers: 1 })
  })

  it('check: the right capability → verified without any build', async () => {
    const run = await action({
      mode: 'check',
      model: published.modelDir,
      'expected-capability': capability
    })

    expectExit(run, 0)
    expect(run.outputs).toMatchObject({
      result: 'verified',
      capability,
      'model-digest': published.modelRoot
    })
    expect(run.outputs['reproduced-digest']).toBeUndefined()
    expect(run.report).toMatchObject({ mode: 'check', result: 'verified', capability })
    expect(run.report!.checks.map(check => check.name)).toEqual(['signature', 'hash', 'compare'])
    expect(run.report!.build).toBeUndefined()
    expectWorkflowCommands(run)
    expect(run.summary.startsWith('<h1>✅ verify-model: verified</h1>')).toBe(true)
    expectCleanedUp(run, { containers: 0 })
  })

  it('check: a wrong capability → mismatch, exit 1, no capability output', async () => {
    const run = await action({
      mode: 'check',
      model: published.modelDir,
      'expected-capability': WRONG_CAPABILITY
    })

    expectExit(run, 1)
    expect(run.outputs.result).toBe('mismatch')
    expect(run.outputs.capability).toBeUndefined()
    expect(Object.keys(run.outputs)).toEqual(expect.arrayContaining(SIGNATURE_OUTPUTS))
    expect(run.report).toMatchObject({
      result: 'mismatch',
      expectedCapability: WRONG_CAPABILITY
    })
    expect(run.report!.capability).toBeUndefined()
    expect(run.summary.startsWith('<h1>❌ verify-model: mismatch</h1>')).toBe(true)
    expect(run.summary).toContain(capability)
    expect(run.summary).toContain(WRONG_CAPABILITY)
    expectWorkflowCommands(run)
    expectCleanedUp(run, { containers: 0 })
  })

  it('a job summary that cannot be written → a warning; the verdict and outputs stand', async () => {
    const run = await action(
      { mode: 'check', model: published.modelDir, 'expected-capability': capability },
      { GITHUB_STEP_SUMMARY: path.join(dir, 'no-such-dir', 'summary.md') }
    )

    expectExit(run, 0)
    expect(run.outputs).toEqual({
      result: 'verified',
      capability,
      'model-digest': published.modelRoot,
      'attestation-digest': attestationDigest,
      'key-ids': published.keyId,
      report: expect.any(String)
    })
    expect(run.commands.filter(command => command.command === 'warning')).toEqual([
      {
        command: 'warning',
        properties: {},
        message: expect.stringMatching(/^the job summary was not written: Unable to access/)
      }
    ])
    expect(run.commands.filter(command => command.command === 'error')).toEqual([])
    expectCleanedUp(run, { containers: 0 })
  })

  it('a tampered model (one byte flipped) → mismatch naming the changed file', async () => {
    const tampered = path.join(dir, 'tampered-model')
    cpSync(published.modelDir, tampered, { recursive: true })
    const weights = path.join(tampered, 'weights.bin')
    const bytes = readFileSync(weights)
    bytes[bytes.length >> 1] ^= 0x01
    writeFileSync(weights, bytes)

    const run = await action({ model: tampered, dataset: published.datasetDir })

    expectExit(run, 1)
    expect(run.outputs.result).toBe('mismatch')
    expect(run.outputs.capability).toBeUndefined()
    expect(run.outputs['reproduced-digest']).toBe(published.modelRoot)
    expect(run.outputs['model-digest']).toMatch(/^[0-9a-f]{64}$/)
    expect(run.outputs['model-digest']).not.toBe(published.modelRoot)
    const diff = run.report!.diff!
    expect(diff.changed.map(change => change.path)).toEqual(['weights.bin'])
    expect(diff.added).toEqual([])
    expect(diff.removed).toEqual([])
    expect(run.report!.capability).toBeUndefined()
    expect(run.summary.startsWith('<h1>❌ verify-model: mismatch</h1>')).toBe(true)
    expect(run.summary).toMatch(/<tr><td>changed<\/td><td><code>weights\.bin<\/code><\/td>/)
    expect(run.report!.reason).toMatch(/^the download differs from the rebuild: 1 changed/)
    expectWorkflowCommands(run)
    expectCleanedUp(run, { containers: 1 })
  })

  it('a tampered SBA (one signature byte flipped) → invalid, an error annotation, no build', async () => {
    const envelope = JSON.parse(readFileSync(published.sbaPath, 'utf8'))
    const signature = Buffer.from(envelope.signatures[0].sig, 'base64')
    signature[5] ^= 0x01
    envelope.signatures[0].sig = signature.toString('base64')
    const sba = path.join(dir, 'tampered.sba.json')
    writeFileSync(sba, JSON.stringify(envelope))

    const run = await action({
      attestation: sba,
      model: published.modelDir,
      dataset: published.datasetDir
    })

    expectExit(run, 1)
    expect(run.outputs).toEqual({ result: 'invalid', report: expect.any(String) })
    expectWorkflowCommands(run)
    expect(run.report).toMatchObject({ result: 'invalid' })
    expect(run.report!.checks).toEqual([
      {
        name: 'signature',
        status: 'fail',
        detail: run.report!.reason,
        durationMs: expect.any(Number)
      }
    ])
    expect(run.summary.startsWith('<h1>⛔ verify-model: invalid</h1>')).toBe(true)
    expectCleanedUp(run, { containers: 0 })
  })

  it('SBA, model (model-url) and dataset (ledger dataset.uri) from a loopback server → verified', async () => {
    const run = await action({
      attestation: `${server.url}/model.sba.json`,
      'model-url': published.outputs.map(name => `${name}=${server.url}/weights/${name}`).join('\n')
    })

    expectExit(run, 0)
    expect(run.outputs).toMatchObject({
      result: 'verified',
      capability,
      'model-digest': published.modelRoot,
      'reproduced-digest': published.modelRoot
    })
    expect(run.report).toMatchObject({ result: 'verified', datasetRoot: expect.any(String) })
    expect(run.report!.checks.find(check => check.name === 'dataset')?.detail).toBe(
      `root ${run.report!.datasetRoot}`
    )
    for (const route of [
      '/model.sba.json',
      '/data.tar.gz',
      '/weights/weights.bin',
      '/weights/config.json'
    ])
      expect(server.requests(route)).toBe(1)
    // No Actions cache service outside GitHub: the action says so and downloads.
    expect(run.stdout).toContain('dataset cache: the Actions cache service is not available here')
    expectCleanedUp(run, { containers: 1 })
  })
})

/** The exit code, with the step's log in the failure message when it is not the expected one. */
function expectExit(run: BundledActionResult, code: number): void {
  if (run.exitCode !== code) {
    throw new Error(
      `exit ${run.exitCode}, expected ${code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`
    )
  }
  expect(run.stderr).not.toMatch(/ERR_|SyntaxError|TypeError|unexpectedly/)
}

/**
 * The workflow commands the runner would obey: one group per phase (fetch, then one per check),
 * and on failure exactly the error annotation and `setFailed`'s error, both with the reason.
 * Nothing the build printed is among them.
 */
function expectWorkflowCommands(run: BundledActionResult): void {
  const report = run.report!
  const phases = ['fetch', ...report.checks.map(check => check.name)]
  const expected = phases.flatMap(phase => [
    { command: 'group', properties: {}, message: phase },
    { command: 'endgroup', properties: {}, message: '' }
  ])
  if (report.result !== 'verified' && report.result !== 'reproduced') {
    expected.push(
      {
        command: 'error',
        properties: { title: `verify-model: ${report.result}` },
        message: report.reason
      },
      { command: 'error', properties: {}, message: `${report.result}: ${report.reason}` }
    )
  }
  expect(run.commands).toEqual(expected)
}

/**
 * Every build container named in the log is gone, and RUNNER_TEMP holds only the runner's own
 * file commands and the JSON report: the staging directory was removed.
 */
function expectCleanedUp(run: BundledActionResult, expected: { containers: number }): void {
  const containers = [...run.stdout.matchAll(/\b(verify-model-[0-9a-f]{12}): /g)].map(m => m[1])
  expect(containers).toHaveLength(expected.containers)
  for (const name of containers) {
    const left = execFileSync(
      'docker',
      ['ps', '--all', '--filter', `name=^/${name}$`, '--format', '{{.Names}}'],
      { encoding: 'utf8' }
    )
    expect(left.trim()).toBe('')
  }
  const report = run.outputs.report
  expect(path.dirname(report)).toBe(run.runnerTemp)
  expect(readdirSync(run.runnerTemp).sort()).toEqual(
    [FILE_COMMANDS_DIR, path.basename(report)].sort()
  )
}
