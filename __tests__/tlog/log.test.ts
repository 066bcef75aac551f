import { beforeAll, afterAll, describe, expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync
} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { leafHash, rootOfLeafHashes } from '../../src/digest/merkle.js'
import { signVsa } from '../../src/attest/vsa.js'
import { verifyAttestation } from '../../src/protocol/attestation.js'
import { attestationDigest } from '../../src/protocol/capability.js'
import { parseEnvelope } from '../../src/protocol/envelope.js'
import { parseCheckpoint } from '../../src/tlog/checkpoint.js'
import { formatEntry, parseEntry } from '../../src/tlog/entry.js'
import { parseNote } from '../../src/tlog/note.js'
import { verifyLogProof } from '../../src/tlog/verify.js'
import { appendEntries, LOCK_FILE } from '../../src/tlog/writer.js'
import { cli } from '../helpers/cli.js'
import {
  entriesFromBundles,
  serveDirectory,
  writeKeyPair,
  writeSba,
  type KeyFiles
} from '../helpers/tlog.js'

const ORIGIN = 'example.org/model-log'
const ENTRIES = 300

describe('verify-model log: a static tiled log built by append', () => {
  let dir: string
  let logDir: string
  let logKey: KeyFiles
  let alice: KeyFiles
  let bob: KeyFiles
  let witness: KeyFiles
  let vkey: string
  const sbas: string[] = []

  const checkpointOf = (logPath = logDir) =>
    parseCheckpoint(parseNote(readFileSync(path.join(logPath, 'checkpoint'))).text)
  const digestOf = (sba: string) =>
    verifyAttestation(readFileSync(sba), [alice.key.publicKey, bob.key.publicKey], 1)
      .attestationDigest
  const append = (sba: string, ...extra: string[]) =>
    cli(
      'log',
      'append',
      sba,
      '--dir',
      logDir,
      '--key',
      logKey.privatePath,
      '--public-key',
      alice.publicPath,
      ...extra
    )

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tlog-log-'))
    logDir = path.join(dir, 'log')
    logKey = writeKeyPair(dir, 'log')
    alice = writeKeyPair(dir, 'alice')
    bob = writeKeyPair(dir, 'bob')
    witness = writeKeyPair(dir, 'witness')
    const init = await cli(
      'log',
      'init',
      '--dir',
      logDir,
      '--origin',
      ORIGIN,
      '--key',
      logKey.privatePath
    )
    expect(init).toMatchObject({ code: 0, stderr: '' })
    vkey = init.stdout.trim()
    for (let i = 0; i < ENTRIES; i++) {
      // Every seventh SBA is signed by Bob too: its entry lists both keys.
      const sba = writeSba(dir, i, i % 7 === 0 ? [alice, bob] : [alice])
      sbas.push(sba)
      const result = await append(sba)
      expect(result).toMatchObject({ code: 0, stdout: `index ${i}\ntree-size ${i + 1}\n` })
    }
  }, 300_000)

  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('log init prints the verifier key and refuses to start over', async () => {
    expect(vkey).toMatch(/^example\.org\/model-log\+[0-9a-f]{8}\+A[Q-Za-f][A-Za-z0-9+/]{42}$/)
    const again = await cli(
      'log',
      'init',
      '--dir',
      logDir,
      '--origin',
      ORIGIN,
      '--key',
      logKey.privatePath
    )
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/already has a checkpoint/)
  })

  it('the root recomputed from the entry bundles is the checkpoint root', () => {
    const checkpoint = checkpointOf()
    expect(checkpoint).toMatchObject({ origin: ORIGIN, treeSize: ENTRIES })
    const entries = entriesFromBundles(logDir, ENTRIES)
    expect(entries).toHaveLength(ENTRIES)
    expect(rootOfLeafHashes(entries.map(entry => leafHash(entry)))).toBe(checkpoint.root)
    // Each entry is the SBA's: its digest and every publisher key whose signature verified.
    for (const i of [0, 1, 7, 255, 256, 299]) {
      const entry = parseEntry(entries[i])
      expect(entry.attestationDigest).toBe(digestOf(sbas[i]))
      // Bob's signature is not checked (only --public-key alice was given): not listed.
      expect(entry.keys).toEqual([alice.publicHex])
    }
    // A full tile replaces its partials; the growing tile is partial.
    expect(existsSync(path.join(logDir, 'tile/entries/000'))).toBe(true)
    expect(existsSync(path.join(logDir, 'tile/entries/000.p'))).toBe(false)
    expect(existsSync(path.join(logDir, 'tile/entries/001.p/44'))).toBe(true)
    expect(readFileSync(path.join(logDir, 'tile/0/000'))).toHaveLength(256 * 32)
    expect(readFileSync(path.join(logDir, 'tile/1/000.p/1'))).toHaveLength(32)
  })

  it('an entry lists every given key that verified the SBA', async () => {
    const both = await cli(
      'log',
      'append',
      sbas[14],
      '--dir',
      logDir,
      '--key',
      logKey.privatePath,
      '--public-key',
      alice.publicPath,
      '--public-key',
      bob.publicPath,
      '--json'
    )
    expect(both.code).toBe(0)
    const { index } = JSON.parse(both.stdout) as { index: number }
    const entry = parseEntry(entriesFromBundles(logDir, index + 1)[index])
    expect(entry.keys).toEqual([alice.publicHex, bob.publicHex].sort())
  })

  it('append refuses an SBA that does not verify under the given keys, and leaves the log alone', async () => {
    const before = readFileSync(path.join(logDir, 'checkpoint'))
    const onlyBob = writeSba(dir, 9999, [bob])
    const result = await append(onlyBob)
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/^invalid: SBA signatures: 0 of 1 trusted key\(s\) verified/)
    expect(readFileSync(path.join(logDir, 'checkpoint'))).toEqual(before)
  })

  it('prove, then verify-sba and capability require and check the proof', async () => {
    const proofFile = path.join(dir, 'sba-3.tlog-proof')
    const proved = await cli(
      'log',
      'prove',
      sbas[3],
      '--dir',
      logDir,
      '--public-key',
      alice.publicPath,
      '-o',
      proofFile
    )
    expect(proved).toMatchObject({ code: 0, stderr: '' })
    const verified = await cli(
      'verify-sba',
      sbas[3],
      '--public-key',
      alice.publicPath,
      '--log-key',
      vkey,
      '--log-proof',
      proofFile
    )
    expect(verified.code).toBe(0)
    expect(verified.stdout).toContain(`log-index 3\nlog-origin ${ORIGIN}\n`)

    const other = await cli(
      'verify-sba',
      sbas[4],
      '--public-key',
      alice.publicPath,
      '--log-key',
      vkey,
      '--log-proof',
      proofFile,
      '--json'
    )
    expect(other.code).toBe(1)
    expect(JSON.parse(other.stdout)).toMatchObject({ result: 'invalid' })
    expect(other.stderr).toMatch(/^invalid: log proof entry: it logs attestation /)

    // verify: the log is checked right after the signature, before any build is attempted.
    const rebuild = await cli(
      'verify',
      '--sba',
      sbas[4],
      '--public-key',
      alice.publicPath,
      '--reproduce-only',
      '--log-key',
      vkey,
      '--log-proof',
      proofFile,
      '--json'
    )
    expect(rebuild.code).toBe(1)
    const report = JSON.parse(rebuild.stdout)
    expect(report).toMatchObject({ result: 'invalid', mode: 'reproduce' })
    expect(report.reason).toMatch(/^log proof entry: it logs attestation /)
    expect(report.checks.map((c: { name: string }) => c.name)).toEqual(['signature', 'log'])
    expect(report.build).toBeUndefined()

    const noProof = await cli(
      'verify-sba',
      sbas[3],
      '--public-key',
      alice.publicPath,
      '--log-key',
      vkey
    )
    expect(noProof.code).toBe(2)
    expect(noProof.stderr).toMatch(/--log-key requires a log proof: give --log-proof/)

    const model = path.join(dir, 'model')
    mkdirSync(model)
    writeFileSync(path.join(model, 'W1.npy'), 'w1\n')
    writeFileSync(path.join(model, 'W2.npy'), 'w2\n')
    const capability = await cli(
      'capability',
      '--sba',
      sbas[3],
      '--model',
      model,
      '--public-key',
      alice.publicPath,
      '--log-key',
      vkey,
      '--log-proof',
      proofFile,
      '--json'
    )
    expect(capability.code).toBe(0)
    expect(JSON.parse(capability.stdout).log).toMatchObject({ index: 3, origin: ORIGIN })
    const wrongKey = await cli(
      'capability',
      '--sba',
      sbas[3],
      '--model',
      model,
      '--public-key',
      alice.publicPath,
      '--log-key',
      vkey.replace(/\+[0-9a-f]{8}\+/, '+00000000+'),
      '--log-proof',
      proofFile
    )
    expect(wrongKey.code).toBe(1)
    expect(wrongKey.stderr).toMatch(/log key: key id 00000000 does not match the key/)
  })

  it('append -o writes a proof that verifies offline', async () => {
    const proofFile = path.join(dir, 'new.tlog-proof')
    const sba = writeSba(dir, 5000, [alice])
    expect((await append(sba, '-o', proofFile)).code).toBe(0)
    const result = verifyLogProof(
      readFileSync(proofFile),
      { logKey: vkey, witnessKeys: [], witnessThreshold: 0 },
      { attestationDigest: digestOf(sba), verifiedKeys: [alice.key.publicKey.raw] }
    )
    expect(result).toMatchObject({ origin: ORIGIN, treeSize: checkpointOf().treeSize })
  })

  it('append logs a rebuild attestation too: the entry vouches for signatures, not for a ledger', async () => {
    const vsaFile = path.join(dir, 'rebuild.vsa.json')
    writeFileSync(
      vsaFile,
      signVsa(
        {
          modelRoot: 'ab'.repeat(32),
          attestationDigest: 'cd'.repeat(32),
          verifierId: 'https://github.com/acme/rebuilder/.github/workflows/rebuild.yml',
          timeVerified: new Date('2026-12-01T12:00:00Z')
        },
        alice.key
      )
    )
    const proofFile = path.join(dir, 'rebuild.tlog-proof')
    expect((await append(vsaFile, '-o', proofFile)).code).toBe(0)
    const result = verifyLogProof(
      readFileSync(proofFile),
      { logKey: vkey, witnessKeys: [], witnessThreshold: 0 },
      {
        attestationDigest: attestationDigest(parseEnvelope(readFileSync(vsaFile))),
        verifiedKeys: [alice.key.publicKey.raw]
      }
    )
    expect(result.treeSize).toBe(checkpointOf().treeSize)
    // Under a key that did not sign it, nothing is appended.
    const before = checkpointOf().treeSize
    const refused = await cli(
      'log',
      'append',
      vsaFile,
      '--dir',
      logDir,
      '--key',
      logKey.privatePath,
      '--public-key',
      bob.publicPath
    )
    expect(refused.code).toBe(1)
    expect(checkpointOf().treeSize).toBe(before)
  })

  describe('witness', () => {
    const cosign = (logPath: string, state: string, ...extra: string[]) =>
      cli(
        'log',
        'cosign',
        '--dir',
        logPath,
        '--log-key',
        vkey,
        '--key',
        witness.privatePath,
        '--name',
        'witness.example/w1',
        '--state',
        state,
        ...extra
      )

    it('cosigns an extension, and the proof then meets a witness threshold', async () => {
      const state = path.join(dir, 'witness-state.json')
      const first = await cosign(logDir, state, '--json')
      expect(first.code).toBe(0)
      const { witnessKey, previousSize } = JSON.parse(first.stdout) as {
        witnessKey: string
        previousSize: number | null
      }
      expect(previousSize).toBeNull()
      expect((await append(writeSba(dir, 6000, [alice]))).code).toBe(0)
      const second = await cosign(logDir, state)
      expect(second.code).toBe(0)
      expect(second.stdout).toMatch(
        /^cosigned example.org\/model-log at size \d+ \(extends size \d+\)\n/
      )

      const proofFile = path.join(dir, 'witnessed.tlog-proof')
      const sba = sbas[10]
      await cli(
        'log',
        'prove',
        sba,
        '--dir',
        logDir,
        '--public-key',
        alice.publicPath,
        '-o',
        proofFile
      )
      const policy = { logKey: vkey, witnessKeys: [witnessKey], witnessThreshold: 1 }
      const subject = { attestationDigest: digestOf(sba), verifiedKeys: [alice.key.publicKey.raw] }
      expect(verifyLogProof(readFileSync(proofFile), policy, subject).witnesses).toEqual([
        'witness.example/w1'
      ])
      // The next append drops the cosignature (it signed the old tree): the threshold fails.
      expect((await append(writeSba(dir, 6001, [alice]))).code).toBe(0)
      await cli(
        'log',
        'prove',
        sba,
        '--dir',
        logDir,
        '--public-key',
        alice.publicPath,
        '-o',
        proofFile
      )
      expect(() => verifyLogProof(readFileSync(proofFile), policy, subject)).toThrow(
        /witness threshold: 0 of 1 configured witness\(es\) cosigned, 1 required/
      )
    })

    it('refuses a rewritten log (a split view) and a rolled-back one', async () => {
      const state = path.join(dir, 'witness-split.json')
      expect((await cosign(logDir, state)).code).toBe(0)
      const size = checkpointOf().treeSize
      // The same log key and origin, the history rewritten: entry 5 left out, then one more.
      const forged = path.join(dir, 'forged')
      const entries = entriesFromBundles(logDir, size)
      await cli('log', 'init', '--dir', forged, '--origin', ORIGIN, '--key', logKey.privatePath)
      await appendEntries(forged, logKey.key, [
        ...entries.slice(0, 5),
        ...entries.slice(6),
        formatEntry('ab'.repeat(32), [alice.key.publicKey.raw]),
        formatEntry('cd'.repeat(32), [alice.key.publicKey.raw])
      ])
      const split = await cosign(forged, state)
      expect(split.code).toBe(1)
      expect(split.stderr).toMatch(
        new RegExp(
          `^invalid: split view: the log's checkpoint \\(size ${size + 1}, root [0-9a-f]{64}\\) is not an extension of the one seen before \\(size ${size}, `
        )
      )
      const shorter = path.join(dir, 'shorter')
      await cli('log', 'init', '--dir', shorter, '--origin', ORIGIN, '--key', logKey.privatePath)
      await appendEntries(shorter, logKey.key, entries.slice(0, 10))
      const rolledBack = await cosign(shorter, state)
      expect(rolledBack.code).toBe(1)
      expect(rolledBack.stderr).toMatch(/split view: .*: the tree is smaller/)
      // The state still holds the honest checkpoint: the honest log is still accepted.
      expect((await cosign(logDir, state)).code).toBe(0)
    })
  })

  describe('monitor', () => {
    const monitor = (...extra: string[]) =>
      cli(
        'log',
        'monitor',
        '--dir',
        logDir,
        '--log-key',
        vkey,
        '--public-key',
        bob.publicPath,
        ...extra
      )

    it('flags an entry naming the key with an unknown digest, until it is known', async () => {
      const bobs = entriesFromBundles(logDir, checkpointOf().treeSize)
        .map(bytes => parseEntry(bytes))
        .filter(entry => entry.keys.includes(bob.publicHex))
        .map(entry => entry.attestationDigest)
      expect(bobs.length).toBeGreaterThan(0)
      const known = path.join(dir, 'known.txt')
      const state = path.join(dir, 'monitor-state.json')
      writeFileSync(known, `# Bob's releases\n${bobs.join('\n')}\n`)
      const clean = await monitor('--known', known, '--state', state, '--json')
      expect(clean.code).toBe(0)
      expect(JSON.parse(clean.stdout)).toMatchObject({ unknown: 0, fromSize: 0 })

      // A signature with Bob's (stolen) key, logged by the attacker: Bob did not publish it.
      const stolen = writeSba(dir, 7777, [bob])
      const logged = await cli(
        'log',
        'append',
        stolen,
        '--dir',
        logDir,
        '--key',
        logKey.privatePath,
        '--public-key',
        bob.publicPath
      )
      expect(logged.code).toBe(0)
      const alarm = await monitor('--known', known, '--state', state)
      expect(alarm.code).toBe(1)
      const size = checkpointOf().treeSize
      expect(alarm.stdout).toBe(
        `log ${ORIGIN}: entries ${size - 1}..${size}, 1 name your key(s), 1 unknown\nUNKNOWN index ${size - 1} attestation ${digestOf(stolen)}\n`
      )
      // The state did not advance: the alarm repeats.
      expect((await monitor('--known', known, '--state', state)).code).toBe(1)
      writeFileSync(known, `${digestOf(stolen)}\n`, { flag: 'a' })
      expect((await monitor('--known', known, '--state', state)).code).toBe(0)
      expect(JSON.parse((await monitor('--state', state, '--json')).stdout)).toMatchObject({
        fromSize: size,
        treeSize: size,
        entries: []
      })
    })
  })

  describe('served over HTTP (127.0.0.1)', () => {
    let server: { url: string; close: () => Promise<void> }
    beforeAll(async () => {
      server = await serveDirectory(logDir)
    })
    afterAll(async () => server.close())

    it('prove, monitor and cosign read the log by URL; a missing proof URL is unverifiable', async () => {
      const proved = await cli(
        'log',
        'prove',
        sbas[299],
        '--url',
        server.url,
        '--public-key',
        alice.publicPath
      )
      expect(proved.code).toBe(0)
      expect(proved.stdout).toMatch(/^c2sp\.org\/tlog-proof@v1\nextra .*\nindex 299\n/)
      writeFileSync(path.join(logDir, 'p.tlog-proof'), proved.stdout)
      const viaUrl = await cli(
        'verify-sba',
        sbas[299],
        '--public-key',
        alice.publicPath,
        '--log-key',
        vkey,
        '--log-proof',
        `${server.url}/p.tlog-proof`
      )
      expect(viaUrl.code).toBe(0)
      expect(viaUrl.stdout).toContain('log-index 299\n')
      const missing = await cli(
        'verify-sba',
        sbas[299],
        '--public-key',
        alice.publicPath,
        '--log-key',
        vkey,
        '--log-proof',
        `${server.url}/absent.tlog-proof`
      )
      expect(missing.code).toBe(1)
      expect(missing.stderr).toMatch(
        /^unverifiable: download http:\/\/127\.0\.0\.1:\d+\/absent\.tlog-proof: HTTP 404/
      )

      const watched = await cli(
        'log',
        'monitor',
        '--url',
        server.url,
        '--log-key',
        vkey,
        '--public-key',
        alice.publicPath,
        '--json'
      )
      expect(JSON.parse(watched.stdout).treeSize).toBe(checkpointOf().treeSize)
      const cosigned = await cli(
        'log',
        'cosign',
        '--url',
        server.url,
        '--log-key',
        vkey,
        '--key',
        witness.privatePath,
        '--name',
        'witness.example/w2',
        '--state',
        path.join(dir, 'w2.json'),
        '-o',
        path.join(dir, 'cosigned-checkpoint')
      )
      expect(cosigned.code).toBe(0)
      expect(readFileSync(path.join(dir, 'cosigned-checkpoint'), 'utf8')).toMatch(
        /\n— witness\.example\/w2 \S+\n$/
      )
    })
  })

  describe('crashes and concurrency', () => {
    it('a crash after the tiles, before the checkpoint, leaves the old log valid', async () => {
      const copy = path.join(dir, 'crash')
      cpSync(logDir, copy, { recursive: true })
      const before = readFileSync(path.join(copy, 'checkpoint'))
      const old = checkpointOf(copy)
      await expect(
        appendEntries(copy, logKey.key, [formatEntry('ee'.repeat(32), [alice.key.publicKey.raw])], {
          onStep: step => {
            if (step === 'tiles-written') throw new Error('power cut')
          }
        })
      ).rejects.toThrow('power cut')
      expect(readFileSync(path.join(copy, 'checkpoint'))).toEqual(before)
      const entries = entriesFromBundles(copy, old.treeSize)
      expect(rootOfLeafHashes(entries.map(entry => leafHash(entry)))).toBe(old.root)
      const proof = await cli(
        'log',
        'prove',
        sbas[42],
        '--dir',
        copy,
        '--public-key',
        alice.publicPath
      )
      expect(proof.code).toBe(0)
      expect(
        verifyLogProof(
          proof.stdout,
          { logKey: vkey, witnessKeys: [], witnessThreshold: 0 },
          { attestationDigest: digestOf(sbas[42]), verifiedKeys: [alice.key.publicKey.raw] }
        ).treeSize
      ).toBe(old.treeSize)
      // No temporary file is left looking like a tile, and the next append works.
      expect(JSON.stringify(listFiles(copy))).not.toMatch(/\.tmp-/)
      await appendEntries(copy, logKey.key, [
        formatEntry('ff'.repeat(32), [alice.key.publicKey.raw])
      ])
      expect(checkpointOf(copy).treeSize).toBe(old.treeSize + 1)
    })

    it("takes over a dead writer's lock, waits for a live one", async () => {
      const copy = path.join(dir, 'locked')
      cpSync(logDir, copy, { recursive: true })
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'])
      const lock = path.join(copy, LOCK_FILE)
      writeFileSync(
        lock,
        JSON.stringify({ pid: Number(dead.stdout), host: os.hostname(), nonce: 'x' })
      )
      const entry = formatEntry('12'.repeat(32), [alice.key.publicKey.raw])
      const size = checkpointOf(copy).treeSize
      await appendEntries(copy, logKey.key, [entry])
      expect(checkpointOf(copy).treeSize).toBe(size + 1)
      expect(existsSync(lock)).toBe(false)

      writeFileSync(lock, JSON.stringify({ pid: process.pid, host: os.hostname(), nonce: 'y' }))
      await expect(appendEntries(copy, logKey.key, [entry], { waitMs: 200 })).rejects.toThrow(
        /log lock .*\.lock is held by another writer \(pid \d+ on .*\) for more than 200 ms/
      )
      rmSync(lock)
    })

    it('serialises concurrent appends', async () => {
      const copy = path.join(dir, 'concurrent')
      cpSync(logDir, copy, { recursive: true })
      const size = checkpointOf(copy).treeSize
      const entries = Array.from({ length: 12 }, (_, i) =>
        formatEntry(i.toString(16).padStart(64, '0'), [alice.key.publicKey.raw])
      )
      await Promise.all(entries.map(entry => appendEntries(copy, logKey.key, [entry])))
      const after = checkpointOf(copy)
      expect(after.treeSize).toBe(size + entries.length)
      const all = entriesFromBundles(copy, after.treeSize)
      expect(rootOfLeafHashes(all.map(entry => leafHash(entry)))).toBe(after.root)
      expect(new Set(all.slice(size).map(e => Buffer.from(e).toString()))).toEqual(
        new Set(entries.map(e => Buffer.from(e).toString()))
      )
    })
  })
})

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String)
}
