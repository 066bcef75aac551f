import { isPassing } from '../errors.js'
import type { Report } from '../verify/report.js'

/** Writes every output at once, after the verdict is final; capability only when it passed. */
export function writeOutputs(
  setOutput: (name: string, value: string) => void,
  report: Report,
  reportPath: string
): void {
  const outputs: [string, string | undefined][] = [
    ['result', report.result],
    ['model-digest', report.downloaded?.root],
    ['reproduced-digest', report.reproduced?.root],
    ['attestation-digest', report.attestationDigest],
    ['key-ids', report.keyIds?.join(',')],
    ['report', reportPath],
    ['log-index', report.log && String(report.log.index)],
    ['log-origin', report.log?.origin],
    ['capability', isPassing(report.result) ? report.capability : undefined],
    ['rebuild-attestation', isPassing(report.result) ? report.rebuildAttestation : undefined]
  ]
  for (const [name, value] of outputs) {
    if (value !== undefined) setOutput(name, value)
  }
}
