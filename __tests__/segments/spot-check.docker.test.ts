// Segmented builds and spot checks (PROTOCOL.md section 9) with the real Docker daemon: a busybox
// "training" whose state is a number carried from /prev to /out, published with the project's
// own CLI (ledger init --segments, build --states, transcript sign) and spot-checked in-process
// and through the bundled action.
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { run } from '../../src/exec.js'
import { utf8 } from '../../src/protocol/encoding.js'
import { signEnvelope } from '../../src/protocol/envelope.js'
import { parsePrivateKey, parsePublicKeys } from '../../src/protocol/keys.js'
import { createTranscriptStatement } from '../../src/segments/transcript.js'
import { writeStateArchive } from '../../src/segments/state-archive.js'
import { unpackArchive } from '../../src/reproduce/archive.js'
import type { SegmentSelection } from '../../src/segments/selection.js'
import { verifyModel, type Reporter } from '../../src/verify/pipeline.js'
import type { Report } from '../../src/verify/report.js'
import { runBundledAction } from '../helpers/action-runner.js'
import { cli } from '../helpers/cli.js'
import { buildBusyboxImage, describeDocker } from '../helpers/docker.js'
import { makeGitRepo } from '../helpers/git.js'
import { ok, startServer, type TestServer } from '../helpers/http-server.js'

const SEGMENTS = 4

/**
 * One segment of training: the weight carries over in /prev, the step count and a log too. With
 * FORGE=i the publisher's segment i adds a forged step (its later segments continue honestly from
 * it); with CLOCK=i segment i also records the time, which no re-run can reproduce.
 */
const TRAIN = `set -eu
i=$VERIFY_MODEL_SEGMENT
if [ "$i" = 1 ]; then w=7; : > /out/log.txt; else w=$(cat /prev/weight); cp /prev/log.txt /out/log.txt; fi
w=$(( (w * 31 + i) % 1000003 ))
if [ "\${FORGE:-0}" = "$i" ]; then w=$(( w + 1 )); fi
if [ "\${CLOCK:-0}" = "$i" ]; then date +%s%N >> /out/log.txt; fi
echo "$w" > /out/weight
echo "segment $i of $VERIFY_MODEL_SEGMENTS" >> /out/log.txt
echo "model $w" > /out/model.bin
`

interface Publication {
  sbaPath: string
  statesDir: string
  modelDir: string
  transcriptPath: string
  /** The roots `build --json` printed, S_1 … S_N. */
  states: string[]
}

const silent: Reporter = { phase() {}, info() {}, buildLog() {}, hashProgress() {} }

describeDocker('segmented builds and spot checks (PROTOCOL.md section 9)', () => {
  let dir: string
  let keyPath: string
  let publicKey: string
  let sourceDir: string
  let imageReference: string
  let honest: Publication
  let server: TestServer

  const succeed = async (...argv: string[]) => {
    const result = await cli(...argv)
    if (result.code !== 0) throw new Error(`verify-model ${argv.join(' ')}: ${result.stderr}`)
    return result
  }

  /** ledger init --segments → sign → build --states → transcript sign, in `name/`. */
  async function publish(name: string, env: string[] = [], sbaFor?: string): Promise<Publication> {
    const base = path.join(dir, name)
    const statement = `${base}.statement.json`
    await succeed(
      'ledger',
      'init',
      '--source-dir',
      sourceDir,
      '--image',
      imageReference,
      '--segments',
      String(SEGMENTS),
      '--output',
      'model.bin',
      ...env.flatMap(e => ['--env', e]),
      '-o',
      statement,
      '--',
      'sh',
      'train.sh'
    )
    const sbaPath = `${base}.sba.json`
    await succeed('sign', statement, '--key', keyPath, '-o', sbaPath)
    const statesDir = path.join(base, 'states')
    const modelDir = path.join(base, 'model')
    const built = await succeed(
      'build',
      sbaPath,
      '--public-key',
      keyPath.replace(/\.key$/, '.pub'),
      '--states',
      statesDir,
      '--out',
      modelDir,
      '--json'
    )
    const facts = JSON.parse(built.stdout)
    expect(built.stderr).toContain(
      `segment ${SEGMENTS}/${SEGMENTS}: S_${SEGMENTS} = ${facts.states[SEGMENTS - 1]}`
    )
    const transcriptPath = path.join(base, 'transcript.json')
    await succeed(
      'transcript',
      'sign',
      '--sba',
      sbaFor ?? sbaPath,
      '--states',
      statesDir,
      '--key',
      keyPath,
      '--state-uri',
      'states/state-{i}.tar',
      '-o',
      transcriptPath
    )
    return { sbaPath: sbaFor ?? sbaPath, statesDir, modelDir, transcriptPath, states: facts.states }
  }

  const verify = (
    publication: Publication,
    segments: SegmentSelection,
    overrides: { transcript?: Buffer; model?: string; random?: (max: number) => number } = {}
  ): Promise<Report> =>
    verifyModel(
      {
        mode: 'verify',
        sba: readFileSync(publication.sbaPath),
        trustedKeys: parsePublicKeys(publicKey),
        threshold: 1,
        model: overrides.model ?? publication.modelDir,
        allowNetwork: false,
        workDir: mkdtempSync(path.join(dir, 'verify-')),
        transcript: {
          bytes: overrides.transcript ?? readFileSync(publication.transcriptPath),
          location: publication.transcriptPath
        },
        segments
      },
      { run, reporter: silent, random: overrides.random }
    )

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'segments-'))
    imageReference = (await buildBusyboxImage()).reference
    sourceDir = path.join(dir, 'source')
    makeGitRepo(sourceDir, { 'train.sh': TRAIN })
    keyPath = path.join(dir, 'publisher.key')
    await succeed('keygen', '--out', path.join(dir, 'publisher'))
    publicKey = readFileSync(path.join(dir, 'publisher.pub'), 'utf8')
    honest = await publish('honest')
    server = await startServer()
  }, 120_000)

  afterAll(async () => {
    await server?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it("publishes N distinct state roots, signed in the transcript; the model is state N's outputs", async () => {
    expect(honest.states).toHaveLength(SEGMENTS)
    expect(new Set(honest.states).size).toBe(SEGMENTS)
    expect(readFileSync(path.join(honest.modelDir, 'model.bin'), 'utf8')).toMatch(/^model \d+\n$/)
    // Only the declared output: the optimizer-like files of the state stay in the archive.
    const state = path.join(dir, 'state-n')
    await unpackArchive(path.join(honest.statesDir, `state-${SEGMENTS}.tar`), state)
    expect(readFileSync(path.join(state, 'log.txt'), 'utf8')).toBe(
      Array.from({ length: SEGMENTS }, (_, i) => `segment ${i + 1} of ${SEGMENTS}\n`).join('')
    )
    const transcript = JSON.parse(readFileSync(honest.transcriptPath, 'utf8'))
    const statement = JSON.parse(Buffer.from(transcript.payload, 'base64').toString('utf8'))
    expect(statement.predicate).toEqual({
      segments: SEGMENTS,
      states: honest.states,
      stateUri: 'states/state-{i}.tar'
    })
  })

  it.each<[string, SegmentSelection, number[]]>([
    ['one random segment', { kind: 'random', count: 1 }, [3]],
    ['three random segments', { kind: 'random', count: 3 }, [1, 2, 4]],
    ['all segments', { kind: 'all' }, [1, 2, 3, 4]]
  ])('an honest transcript passes a spot check of %s', async (_, selection, expected) => {
    // Floyd's draw with these answers picks exactly `expected`.
    const answers = { 1: [2], 3: [0, 1, 3], 4: [] }[expected.length] as number[]
    const report = await verify(honest, selection, { random: () => answers.shift() as number })
    expect(report.reason).toContain(
      `${expected.length} of ${SEGMENTS} segments re-run (${expected.join(', ')})`
    )
    expect(report.result).toBe('verified')
    expect(report.capability).toMatch(/^ocap1:/)
    expect(report.segments?.indices).toEqual(expected)
    expect(report.segments?.runs.map(r => [r.index, r.status, r.root])).toEqual(
      expected.map(i => [i, 'pass', honest.states[i - 1]])
    )
    expect(report.segments?.runs.map(r => r.prevRoot)).toEqual(
      expected.map(i => (i === 1 ? undefined : honest.states[i - 2]))
    )
    expect(report.checks.find(c => c.name === 'source')?.detail).toMatch(/^commit [0-9a-f]{40}$/)
    expect(report.checks.every(c => c.status === 'pass' && c.detail !== '')).toBe(true)
    expect(report.checks.map(c => c.name)).toEqual([
      'signature',
      'transcript',
      'hash',
      'state',
      'source',
      'dependencies',
      'dataset',
      'image',
      ...expected.map(i => `segment ${i}`),
      'compare'
    ])
  })

  it('a consistently forged segment is caught exactly when the draw includes it', async () => {
    // The forger's segment 3 is not what the code computes; segments 4.. continue from it honestly.
    const forged = await publish('forged', ['FORGE=3'], honest.sbaPath)
    expect(forged.states.slice(0, 2)).toEqual(honest.states.slice(0, 2))
    expect(forged.states[2]).not.toBe(honest.states[2])
    const full = await verify(forged, { kind: 'all' })
    expect(full.result).toBe('mismatch')
    expect(full.reason).toMatch(
      /^segment 3: re-run from state 2 gives root [0-9a-f]{64}, but the transcript commits to S_3/
    )
    expect(full.segments?.runs.map(r => [r.index, r.status])).toEqual([
      [1, 'pass'],
      [2, 'pass'],
      [3, 'fail']
    ])
    expect(full.capability).toBeUndefined()
    // Draws of two: [1,2], [2,4] miss it (escape: the transcript is verified), [3,4] finds it.
    const drawn = async (answers: number[]) =>
      verify(forged, { kind: 'random', count: 2 }, { random: () => answers.shift() as number })
    const missed = await drawn([0, 1])
    expect([missed.segments?.indices, missed.result]).toEqual([[1, 2], 'verified'])
    const alsoMissed = await drawn([1, 3])
    expect([alsoMissed.segments?.indices, alsoMissed.result]).toEqual([[2, 4], 'verified'])
    const caught = await drawn([2, 3])
    expect([caught.segments?.indices, caught.result]).toEqual([[3, 4], 'mismatch'])
    expect(caught.reason).toMatch(/^segment 3: /)
    expect(caught.segments?.escape).toEqual([
      { forged: 1, probability: 0.5 },
      { forged: 1, probability: 0.5 }
    ])
  })

  it('a forged state root alone is caught by the segment that makes it and the one that reads it', async () => {
    const states = [...honest.states]
    states[1] = states[1].replace(/^./, c => (c === '0' ? '1' : '0'))
    const transcript = signedTranscript(states)
    const two = await verify(honest, { kind: 'indices', indices: [2] }, { transcript })
    expect([two.result, two.reason]).toEqual([
      'mismatch',
      expect.stringMatching(/^segment 2: re-run from state 1 gives root/)
    ])
    const three = await verify(honest, { kind: 'indices', indices: [3] }, { transcript })
    expect(three.result).toBe('mismatch')
    expect(three.reason).toMatch(
      /^segment 3: state 2 \(.*state-2\.tar\) unpacks to root [0-9a-f]{64}, but the transcript commits to/
    )
    const others = await verify(honest, { kind: 'indices', indices: [1, 4] }, { transcript })
    expect(others.result).toBe('verified')
  })

  it('a published state archive that does not match its root is a mismatch naming the state', async () => {
    const tampered: Publication = {
      ...honest,
      transcriptPath: path.join(dir, 'tampered', 'transcript.json')
    }
    cpSync(path.dirname(honest.transcriptPath), path.dirname(tampered.transcriptPath), {
      recursive: true
    })
    const state = path.join(dir, 'tampered-state')
    await unpackArchive(path.join(honest.statesDir, 'state-1.tar'), state)
    writeFileSync(path.join(state, 'weight'), '1\n')
    const archive = path.join(path.dirname(tampered.transcriptPath), 'states', 'state-1.tar')
    rmSync(archive)
    await writeStateArchive(state, archive)
    const report = await verify(tampered, { kind: 'indices', indices: [2] })
    expect(report.result).toBe('mismatch')
    expect(report.reason).toContain('segment 2: state 1 (')
    expect(report.reason).toContain('the published state is not the one signed')
    rmSync(path.join(path.dirname(tampered.transcriptPath), 'states', 'state-3.tar'))
    const missing = await verify(tampered, { kind: 'indices', indices: [4] })
    expect(missing.result).toBe('unverifiable')
    expect(missing.reason).toMatch(/^segment 4: state 3 \(.*\): cannot fetch it/)
  })

  it("a transcript for another SBA, or with the wrong count, is invalid; a model that is not state N's outputs a mismatch", async () => {
    const clock = await publish('clock', ['CLOCK=2'])
    const other = await verify(
      honest,
      { kind: 'random', count: 1 },
      { transcript: readFileSync(clock.transcriptPath) }
    )
    expect(other.result).toBe('invalid')
    expect(other.reason).toContain('the transcript belongs to another SBA')

    const short = await verify(
      honest,
      { kind: 'random', count: 1 },
      { transcript: signedTranscript(honest.states.slice(0, 3)) }
    )
    expect(short.result).toBe('invalid')
    expect(short.reason).toContain(`3 states, but the ledger's build.segments is ${SEGMENTS}`)

    const model = path.join(dir, 'other-model')
    cpSync(honest.modelDir, model, { recursive: true })
    writeFileSync(path.join(model, 'model.bin'), 'model 1\n')
    const wrong = await verify(honest, { kind: 'random', count: 1 }, { model })
    expect(wrong.result).toBe('mismatch')
    expect(wrong.reason).toMatch(/^the download is not state 4's outputs/)
    expect(wrong.diff?.changed.map(c => c.path)).toEqual(['model.bin'])
    expect(wrong.checks.map(c => c.name)).not.toContain('source')

    // A segment that reads the clock does not reproduce: mismatch naming it; the others pass.
    const nondeterministic = await verify(clock, { kind: 'indices', indices: [2] })
    expect(nondeterministic.result).toBe('mismatch')
    expect(nondeterministic.reason).toMatch(/^segment 2: re-run from state 1 gives root/)
    expect((await verify(clock, { kind: 'indices', indices: [1, 3] })).result).toBe('verified')
  })

  it('the bundled action: plan draws the matrix, a matrix job re-runs its segment from https states', async () => {
    for (let i = 1; i <= SEGMENTS; i++)
      server.route(
        `/states/state-${i}.tar`,
        ok(readFileSync(path.join(honest.statesDir, `state-${i}.tar`)))
      )
    const transcript = signedTranscript(honest.states, `${server.url}/states/state-{i}.tar`)
    server.route('/transcript.json', ok(transcript))

    const plan = await runBundledAction(
      {
        attestation: honest.sbaPath,
        'public-key': publicKey,
        mode: 'plan',
        segments: '3',
        transcript: `${server.url}/transcript.json`
      },
      { baseDir: dir }
    )
    expect(plan.exitCode).toBe(0)
    const matrix = JSON.parse(plan.outputs['segments-matrix']) as number[]
    expect(matrix).toHaveLength(3)
    expect(new Set(matrix).size).toBe(3)
    expect(matrix.every(i => Number.isInteger(i) && i >= 1 && i <= SEGMENTS)).toBe(true)

    const job = await runBundledAction(
      {
        attestation: honest.sbaPath,
        'public-key': publicKey,
        model: honest.modelDir,
        transcript: `${server.url}/transcript.json`,
        segments: '3,'
      },
      { baseDir: dir, timeoutMs: 180_000 }
    )
    expect(job.stderr).toBe('')
    expect(job.exitCode).toBe(0)
    expect(job.outputs.result).toBe('verified')
    expect(job.outputs.capability).toMatch(/^ocap1:/)
    expect(job.stdout).toContain('::group::segment 3')
    expect(job.stdout).toContain('1 of 4 segments re-run (3)')
    expect(server.requests('/states/state-2.tar')).toBe(1)
    expect(server.requests('/states/state-4.tar')).toBe(1)
    expect(job.summary).toContain('Segments: 1 of 4 segments re-run (3)')
    expect(job.summary).toContain(
      'a transcript with 1 forged segment escapes with probability 75 %, with ⌈N/10⌉ = 1 forged 75 %'
    )
    expect(job.summary).toContain(
      `<td>3</td><td><code>${honest.states[1].slice(0, 12)}</code></td>`
    )

    const forgedStates = [...honest.states]
    forgedStates[2] = '0'.repeat(64)
    server.route(
      '/forged.json',
      ok(signedTranscript(forgedStates, `${server.url}/states/state-{i}.tar`))
    )
    const failing = await runBundledAction(
      {
        attestation: honest.sbaPath,
        'public-key': publicKey,
        model: honest.modelDir,
        transcript: `${server.url}/forged.json`,
        segments: '3,'
      },
      { baseDir: dir, timeoutMs: 180_000 }
    )
    expect(failing.exitCode).toBe(1)
    expect(failing.outputs.result).toBe('mismatch')
    expect(failing.outputs.capability).toBeUndefined()
    expect(failing.stdout).toMatch(
      /::error title=verify-model%3A mismatch::segment 3: re-run from state 2 gives root/
    )
  })

  /** A transcript of `states` for the honest SBA, signed with the publisher's key. */
  function signedTranscript(states: string[], stateUri = 'states/state-{i}.tar'): Buffer {
    const sba = JSON.parse(readFileSync(honest.sbaPath, 'utf8'))
    const transcript = JSON.parse(readFileSync(honest.transcriptPath, 'utf8'))
    const statement = JSON.parse(Buffer.from(transcript.payload, 'base64').toString('utf8'))
    expect(sba.payload).toBeDefined()
    const bytes = createTranscriptStatement({
      attestationDigest: statement.subject[0].digest.sha256,
      segments: states.length,
      states,
      stateUri
    })
    return Buffer.from(
      signEnvelope(utf8(Buffer.from(bytes).toString('utf8')), [
        parsePrivateKey(readFileSync(keyPath, 'utf8'))
      ])
    )
  }
})
