import { beforeAll, afterAll, expect, it } from '@jest/globals'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { generateKeyPair, parsePrivateKey } from '../../src/protocol/keys.js'
import { formatEntry } from '../../src/tlog/entry.js'
import { monitorLog } from '../../src/tlog/monitor.js'
import { formatProof } from '../../src/tlog/proof.js'
import { proveEntry } from '../../src/tlog/prove.js'
import {
  consistencyProof,
  inclusionProof,
  treeRoot,
  verifyConsistency
} from '../../src/tlog/rfc6962.js'
import { directorySource } from '../../src/tlog/source.js'
import { TiledLog } from '../../src/tlog/tiled-log.js'
import { verifyCheckpointNote, verifyLogProof } from '../../src/tlog/verify.js'
import { cosignLatest, witnessVerifierKey } from '../../src/tlog/witness.js'
import { appendEntries, initLog, writeAtomically } from '../../src/tlog/writer.js'
import { repoRoot } from '../helpers/paths.js'
import { describeRequiring } from '../helpers/requirements.js'

const GO_ENV = {
  GOPATH: '/usr/share/gocode',
  GO111MODULE: 'off',
  GOFLAGS: '',
  GOPROXY: 'off',
  GOCACHE: path.join(os.tmpdir(), 'verify-model-go-cache')
}
const REFERENCE = '/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog/tlog.go'

function goAvailable(): boolean {
  return spawnSync('go', ['version']).status === 0 && existsSync(REFERENCE)
}

const key = () => parsePrivateKey(generateKeyPair().privateKeyPem)
const ENTRIES = 300
const entries = Array.from({ length: ENTRIES }, (_, i) =>
  formatEntry(i.toString(16).padStart(64, '0'), [key().publicKey.raw])
)

describeRequiring(
  "interop with Go's golang.org/x/mod/sumdb/note and sumdb/tlog",
  goAvailable,
  'Go and its sumdb sources are required in CI: apt-get install golang-go golang-golang-x-mod-dev',
  () => {
    let dir: string
    let binary: string
    const go = (request: object): Record<string, unknown> =>
      JSON.parse(
        execFileSync(binary, [], { input: JSON.stringify(request), encoding: 'utf8' })
      ) as Record<string, unknown>

    beforeAll(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'tlog-go-'))
      binary = path.join(dir, 'tlog-go')
      execFileSync(
        'go',
        ['build', '-o', binary, path.join(repoRoot, '__tests__/fixtures/tlog-go/main.go')],
        { env: { ...process.env, ...GO_ENV }, stdio: 'pipe' }
      )
    }, 120_000)
    afterAll(() => rmSync(dir, { recursive: true, force: true }))

    it('Go verifies our checkpoint note, cosignature, tiles, inclusion and consistency proofs', async () => {
      const logDir = path.join(dir, 'ours')
      const logKey = key()
      const vkey = await initLog(logDir, 'example.org/ours', logKey)
      await appendEntries(logDir, logKey, entries.slice(0, 100))
      for (const entry of entries.slice(100)) await appendEntries(logDir, logKey, [entry])
      const witness = { name: 'witness.example/ours', key: key() }
      const source = directorySource(logDir)
      const { cosigned } = await cosignLatest(source, vkey, witness, undefined, 1_700_000_000)
      await writeAtomically(logDir, 'checkpoint', cosigned)
      const proofs = await Promise.all(
        [0, 1, 255, 256, 299].map(async i => (await proveEntry(source, entries[i])).proof)
      )
      const log = new TiledLog(source, ENTRIES)
      const result = go({
        mode: 'check',
        dir: logDir,
        logKey: vkey,
        witnessKey: witnessVerifierKey(witness),
        proofs,
        consistency: {
          old: 100,
          oldRoot: Buffer.from(await treeRoot(100, log.node), 'hex').toString('base64'),
          hashes: (await consistencyProof(100, ENTRIES, log.node)).map(h =>
            Buffer.from(h, 'hex').toString('base64')
          )
        }
      })
      // Every hash tile sumdb/tlog lists for the tree, compared byte for byte.
      expect(result).toMatchObject({ treeSize: ENTRIES, witnessed: true, proofs: 5 })
      expect(result.tiles).toBeGreaterThanOrEqual(3)
    })

    it('we verify a log, checkpoint, cosignature and proofs written by Go', async () => {
      const logDir = path.join(dir, 'theirs')
      const made = go({
        mode: 'make',
        dir: logDir,
        origin: 'example.org/theirs',
        witness: 'witness.example/theirs',
        entries: entries.map(e => Buffer.from(e).toString('base64')),
        oldSize: 137
      }) as {
        logKey: string
        witnessKey: string
        checkpoint: string
        root: string
        proofs: Record<string, string[]>
        consistency: { old: number; oldRoot: string; hashes: string[] }
      }
      const policy = { logKey: made.logKey, witnessKeys: [made.witnessKey], witnessThreshold: 1 }
      const { checkpoint, witnesses } = verifyCheckpointNote(made.checkpoint, policy)
      expect(checkpoint).toMatchObject({
        origin: 'example.org/theirs',
        treeSize: ENTRIES,
        root: made.root
      })
      expect(witnesses).toEqual(['witness.example/theirs'])

      const log = new TiledLog(directorySource(logDir), ENTRIES)
      expect(await treeRoot(ENTRIES, log.node)).toBe(made.root)
      for (const [index, hashes] of Object.entries(made.proofs)) {
        expect(await inclusionProof(Number(index), ENTRIES, log.node)).toEqual(hashes)
        const proof = formatProof({
          extra: entries[Number(index)],
          index: Number(index),
          hashes,
          checkpoint: made.checkpoint
        })
        const entryKeys = [Buffer.from(entries[Number(index)]).toString().split('key ')[1].trim()]
        expect(
          verifyLogProof(proof, policy, {
            attestationDigest: Number(index).toString(16).padStart(64, '0'),
            verifiedKeys: entryKeys.map(k => Buffer.from(k, 'hex'))
          })
        ).toMatchObject({ index: Number(index), treeSize: ENTRIES, root: made.root })
      }
      const { old, oldRoot, hashes } = made.consistency
      expect(await consistencyProof(old, ENTRIES, log.node)).toEqual(hashes)
      expect(() => verifyConsistency(old, ENTRIES, oldRoot, made.root, hashes)).not.toThrow()
      expect(() =>
        verifyConsistency(old, ENTRIES, oldRoot, made.root, [...hashes].reverse())
      ).toThrow(/consistency proof from size 137 to 300/)

      // Our monitor reads their entry bundles, checked against their tiles.
      writeFileSync(path.join(logDir, 'checkpoint'), made.checkpoint)
      const report = await monitorLog(
        directorySource(logDir),
        made.logKey,
        [],
        new Set(),
        undefined
      )
      expect(report).toMatchObject({ treeSize: ENTRIES, malformed: [], entries: [] })
    })
  }
)
