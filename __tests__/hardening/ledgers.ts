// Signed ledgers for the hardening tests: a real git source, the busybox test image, one key.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { sha256, utf8 } from '../../src/protocol/encoding.js'
import { signEnvelope } from '../../src/protocol/envelope.js'
import { privateKeyFromSeed, publicKeyPem } from '../../src/protocol/keys.js'
import { createStatement, type BuildSpec, type ImageRef } from '../../src/protocol/ledger.js'
import { makeGitRepo } from '../helpers/git.js'

export const key = privateKeyFromSeed(sha256(utf8('hardening')))
export const publicKey = publicKeyPem(key.publicKey)

export interface Signed {
  sba: string
  source: string
  commit: string
}

/** Commits `files` into a fresh repository under `dir` and signs a ledger building it. */
export function signedLedger(
  dir: string,
  image: ImageRef,
  build: Partial<BuildSpec>,
  files: Record<string, string | Buffer> = { 'README.md': '# hardening\n' }
): Signed {
  const work = mkdtempSync(path.join(dir, 'ledger-'))
  const source = path.join(work, 'source')
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(source, name)), { recursive: true })
    writeFileSync(path.join(source, name), content)
  }
  const commit = makeGitRepo(source, {})
  const statement = createStatement({
    sourceUri: `git+file://${source}`,
    gitCommit: commit,
    dependencies: [],
    image: { uri: image.uri, sha256: image.sha256 },
    build: { command: ['true'], sourceDateEpoch: 1700000000, timeoutSeconds: 60, ...build }
  })
  const sba = path.join(work, 'model.sba.json')
  writeFileSync(sba, signEnvelope(statement, [key]))
  return { sba, source, commit }
}

/** Runs `tasks` at most `limit` at a time (the machine is shared). */
export async function inBatches<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length)
  let next = 0
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++
      results[index] = await tasks[index]()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker))
  return results
}
