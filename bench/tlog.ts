// Transparency-log benchmark (issue 11): appending 10,000 entries one append at a time (lock,
// checkpoint read and verified, tiles, signed checkpoint, atomic renames) and verifying one
// .tlog-proof, each against a baseline measured in the same process: the same number of atomic
// file writes of the entry alone (the I/O floor of an append) and one bare Ed25519 verification
// (the floor of a proof check). Also: the same entries appended in one batch (one checkpoint). Run with `node bench/tlog.mjs [--entries 10000]`.
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { sign, verifyStrict } from '../src/protocol/ed25519.js'
import { generateKeyPair, parsePrivateKey } from '../src/protocol/keys.js'
import { formatEntry } from '../src/tlog/entry.js'
import { proveEntry } from '../src/tlog/prove.js'
import { directorySource } from '../src/tlog/source.js'
import { verifyLogProof } from '../src/tlog/verify.js'
import { appendEntries, initLog, writeAtomically } from '../src/tlog/writer.js'

const { values } = parseArgs({ options: { entries: { type: 'string', default: '10000' } } })
const count = Number(values.entries)
const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-tlog-'))
const key = parsePrivateKey(generateKeyPair().privateKeyPem)
const publisher = parsePrivateKey(generateKeyPair().privateKeyPem).publicKey.raw
const entries = Array.from({ length: count }, (_, i) =>
  formatEntry(i.toString(16).padStart(64, '0'), [publisher])
)
const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9

async function main(): Promise<void> {
  const floor = path.join(dir, 'floor')
  let start = process.hrtime.bigint()
  for (let i = 0; i < count; i++) await writeAtomically(floor, `e/${i % 256}`, entries[i])
  const floorSeconds = seconds(start)

  const log = path.join(dir, 'log')
  const vkey = await initLog(log, 'bench.example/log', key)
  start = process.hrtime.bigint()
  for (const entry of entries) await appendEntries(log, key, [entry])
  const appendSeconds = seconds(start)

  const batch = path.join(dir, 'batch')
  await initLog(batch, 'bench.example/batch', key)
  start = process.hrtime.bigint()
  await appendEntries(batch, key, entries)
  const batchSeconds = seconds(start)

  const index = Math.floor(count / 3)
  const { proof } = await proveEntry(directorySource(log), entries[index])
  const policy = { logKey: vkey, witnessKeys: [], witnessThreshold: 0 }
  const subject = {
    attestationDigest: index.toString(16).padStart(64, '0'),
    verifiedKeys: [publisher]
  }
  const rounds = 200
  verifyLogProof(proof, policy, subject)
  start = process.hrtime.bigint()
  for (let i = 0; i < rounds; i++) verifyLogProof(proof, policy, subject)
  const verifySeconds = seconds(start) / rounds
  const message = Buffer.from('checkpoint body\n')
  const signature = sign(message, key.seed)
  start = process.hrtime.bigint()
  for (let i = 0; i < rounds; i++) verifyStrict(signature, message, key.publicKey.raw)
  const ed25519Seconds = seconds(start) / rounds

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  console.log(`CPU: ${cpu} (${os.availableParallelism()} cores), Node ${process.version}`)
  console.log(
    `append ${count} entries one at a time: ${appendSeconds.toFixed(1)} s (${((appendSeconds / count) * 1000).toFixed(2)} ms/append); ` +
      `${count} atomic entry writes alone: ${floorSeconds.toFixed(1)} s; ratio ${(appendSeconds / floorSeconds).toFixed(1)}x`
  )
  console.log(`append ${count} entries in one batch (one checkpoint): ${batchSeconds.toFixed(2)} s`)
  console.log(
    `verify one proof (tree of ${count}): ${(verifySeconds * 1000).toFixed(2)} ms; ` +
      `one Ed25519 verification: ${(ed25519Seconds * 1000).toFixed(2)} ms; ratio ${(verifySeconds / ed25519Seconds).toFixed(2)}x`
  )
}

try {
  await main()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
