// Rebuild attestations in the action: fetching those to accept (mode attested) and writing the
// one this run signs after a passing rebuild.
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { messageOf } from '../errors.js'
import {
  MAX_REBUILD_ATTESTATION_BYTES,
  type Fetched,
  type RebuildCandidate
} from '../attest/accept.js'
import type { DownloadFn } from '../download.js'
import { rebuildAttestationFor } from '../verify/rebuild-attestation.js'
import type { Report } from '../verify/report.js'
import type { ActionInputs, RebuildInputs, Source } from './inputs.js'

/** A tlog-proof is a few KiB; this is generous. */
const MAX_LOG_PROOF_BYTES = 1024 * 1024

/** Every attestation (and its log proof) read or downloaded; a failure is recorded, not thrown. */
export async function fetchRebuildCandidates(
  rebuilds: RebuildInputs,
  staging: string,
  download: DownloadFn,
  info: (line: string) => void
): Promise<RebuildCandidate[]> {
  return Promise.all(
    rebuilds.attestations.map(async (source, i) => {
      const proof = rebuilds.logProofs[i]
      return {
        source: describe(source),
        attestation: await fetchSource(source, path.join(staging, `rebuild-${i + 1}.json`), {
          download,
          info,
          maxBytes: MAX_REBUILD_ATTESTATION_BYTES
        }),
        ...(proof === undefined
          ? {}
          : {
              logProof: await fetchSource(
                proof,
                path.join(staging, `rebuild-${i + 1}.tlog-proof`),
                {
                  download,
                  info,
                  maxBytes: MAX_LOG_PROOF_BYTES
                }
              )
            })
      }
    })
  )
}

async function fetchSource(
  source: Source,
  file: string,
  options: { download: DownloadFn; info: (line: string) => void; maxBytes: number }
): Promise<Fetched> {
  try {
    if (source.kind === 'path') return { bytes: await readFile(source.path) }
    options.info(`downloading ${source.url}`)
    await options.download(source.url, file, { maxBytes: options.maxBytes })
    return { bytes: await readFile(file) }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return { error: code ? `cannot read ${describe(source)}: ${code}` : messageOf(error) }
  }
}

function describe(source: Source): string {
  return source.kind === 'path' ? source.path : source.url
}

/**
 * After a passing rebuild with `attest-key` set: signs the rebuild attestation, writes it beside
 * the report and records its path in the report (the `rebuild-attestation` output).
 */
export async function writeRebuildAttestation(
  report: Report,
  inputs: ActionInputs,
  now: () => Date,
  fileName: string
): Promise<void> {
  if (inputs.attest === undefined) return
  const envelope = rebuildAttestationFor(report, {
    ...inputs.attest,
    resourceUri: inputs.modelUrls.length === 1 ? inputs.modelUrls[0].url : undefined,
    sbaUri: inputs.attestation.kind === 'url' ? inputs.attestation.url : undefined,
    now
  })
  if (envelope === undefined) return
  const file = path.join(inputs.workingDirectory, fileName)
  await writeFile(file, envelope, { flag: 'wx' })
  report.rebuildAttestation = file
}
