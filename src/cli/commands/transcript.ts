import { readdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Command } from 'commander'
import { parseEnvelope, signEnvelope, verifyEnvelope } from '../../protocol/envelope.js'
import { attestationDigest } from '../../protocol/capability.js'
import { parseStatement } from '../../protocol/ledger.js'
import { unpackState } from '../../segments/state-archive.js'
import { stateArchiveName } from '../../segments/run.js'
import { createTranscriptStatement } from '../../segments/transcript.js'
import { asUsageError, collect, readInputFile, readPrivateKeyFile, UsageError } from '../io.js'
import type { CliContext } from '../context.js'

interface TranscriptSignOptions {
  sba: string
  states: string
  key: string[]
  stateUri: string
  out?: string
}

export function registerTranscript(program: Command, context: CliContext): void {
  const transcript = program
    .command('transcript')
    .description('Training transcripts of segmented builds (docs/protocol.md section 9).')
  transcript
    .command('sign')
    .description(
      "Sign the transcript of a segmented build: every state's root, read back from the archives that `build --states` wrote."
    )
    .requiredOption('--sba <file>', 'the SBA of the segmented build')
    .requiredOption('--states <dir>', 'the directory `verify-model build --states` wrote')
    .requiredOption(
      '--state-uri <template>',
      'where state i will be published, with {i} for the index (e.g. https://example.org/states/state-{i}.tar)'
    )
    .option('--key <file>', "PKCS#8 PEM private key (the SBA's); repeatable", collect, [])
    .option('-o, --out <file>', 'write the transcript here instead of stdout')
    .action(async (options: TranscriptSignOptions) => {
      if (options.key.length === 0) throw new UsageError('at least one --key is required')
      const keys = options.key.map(file => readPrivateKeyFile(file))
      const sbaBytes = readInputFile(options.sba, 'SBA')
      let digest: string
      let segments: number | undefined
      try {
        const envelope = parseEnvelope(sbaBytes)
        verifyEnvelope(
          envelope,
          keys.map(key => key.publicKey),
          1
        )
        segments = parseStatement(envelope.payload).build.segments
        digest = attestationDigest(envelope)
      } catch (error) {
        throw asUsageError(error)
      }
      if (segments === undefined)
        throw new UsageError(
          `${options.sba}: the ledger has no build.segments: nothing to transcribe`
        )
      const states = await readStateRoots(options.states, segments)
      const statement = (() => {
        try {
          return createTranscriptStatement({
            attestationDigest: digest,
            segments,
            states,
            stateUri: options.stateUri
          })
        } catch (error) {
          throw asUsageError(error)
        }
      })()
      const signed = signEnvelope(statement, keys)
      if (options.out) writeFileSync(options.out, signed)
      else context.io.stdout(signed)
      for (const [i, root] of states.entries()) context.io.stderr(`S_${i + 1} ${root}\n`)
    })
}

/** The roots of state-1.tar … state-N.tar, each unpacked and hashed: what is signed is what is published. */
async function readStateRoots(dir: string, segments: number): Promise<string[]> {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (error) {
    throw new UsageError(`--states ${dir}: ${(error as NodeJS.ErrnoException).code ?? error}`)
  }
  const expected = Array.from({ length: segments }, (_, i) => stateArchiveName(i + 1))
  const missing = expected.filter(name => !names.includes(name))
  if (missing.length > 0)
    throw new UsageError(
      `--states ${dir}: the build has ${segments} segments but ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''} ${missing.length === 1 ? 'is' : 'are'} missing`
    )
  const extra = names.filter(name => /^state-\d+\.tar$/.test(name) && !expected.includes(name))
  if (extra.length > 0)
    throw new UsageError(
      `--states ${dir}: ${extra.join(', ')} is not a state of this ${segments}-segment build`
    )
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'verify-model-transcript-'))
  try {
    const roots: string[] = []
    for (const [i, name] of expected.entries()) {
      const unpacked = path.join(scratch, String(i + 1))
      const digest = await unpackState(path.join(dir, name), unpacked, {
        label: `state ${i + 1} (${path.join(dir, name)})`
      }).catch(error => {
        throw asUsageError(error)
      })
      roots.push(digest.root)
      await rm(unpacked, { recursive: true, force: true })
    }
    return roots
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}
