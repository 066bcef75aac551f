// The rebuild attestation a verifier signs after it rebuilt a model (PROTOCOL.md section 8).
import { isPassing } from '../errors.js'
import { signVsa } from '../attest/vsa.js'
import type { PrivateKey } from '../protocol/keys.js'
import type { Report } from './report.js'

export interface AttestOptions {
  key: PrivateKey
  verifierId: string
  /** Where the model was fetched (one URL), when it was. */
  resourceUri?: string
  /** Where the SBA was fetched, when it was. */
  sbaUri?: string
  now: () => Date
}

/**
 * The signed VSA (DSSE envelope JSON) for a report that passed after a rebuild (`verified` in
 * verify mode, `reproduced`); undefined for every other report, so a failure never has one and
 * neither has a pass that rebuilt nothing (check, attested).
 */
export function rebuildAttestationFor(report: Report, options: AttestOptions): string | undefined {
  const rebuilt = report.reproduced?.root
  if (
    !isPassing(report.result) ||
    rebuilt === undefined ||
    report.attestationDigest === undefined
  ) {
    return undefined
  }
  return signVsa(
    {
      modelRoot: report.downloaded?.root ?? rebuilt,
      attestationDigest: report.attestationDigest,
      verifierId: options.verifierId,
      timeVerified: options.now(),
      resourceUri: report.downloaded ? options.resourceUri : undefined,
      sbaUri: options.sbaUri
    },
    options.key
  )
}
