import { describe, expect, it } from '@jest/globals'
import { writeOutputs } from '../../src/action/outputs.js'
import { renderSummary } from '../../src/action/summary.js'
import { renderReportText } from '../../src/cli/render.js'
import type { Report } from '../../src/verify/report.js'

const report: Report = {
  schemaVersion: 1,
  mode: 'attested',
  result: 'invalid',
  reason: 'rebuild attestations: 1 distinct trusted rebuilder key(s) …',
  checks: [{ name: 'rebuild-attestations', status: 'fail', detail: 'x' }],
  rebuilderThreshold: 2,
  rebuildAttestations: [
    {
      source: '/w/one.vsa.json',
      keyIds: ['a'.repeat(64)],
      counted: true,
      why: '',
      verifierId: 'https://r1.example/'
    },
    {
      source: '/w/two.vsa.json',
      keyIds: ['b'.repeat(64)],
      counted: false,
      why: "verificationResult: 'FAILED', expected 'PASSED'",
      verifierId: '<img src=x onerror=alert(1)>\n\n# forged'
    }
  ],
  rebuildAttestation: '/tmp/should-not-be-output.json'
}

describe('rebuild attestations in the summary, the CLI text and the outputs', () => {
  it('lists each attestation, counted or why not, with every string inert', () => {
    const html = renderSummary(report)
    expect(html).toContain('<h2>Rebuild attestations (1 counted, threshold 2)</h2>')
    expect(html).toContain('<td>counted</td>')
    expect(html).toContain('verificationResult: &#39;FAILED&#39;, expected &#39;PASSED&#39;')
    expect(html).toContain('&#60;img src=x onerror=alert(1)&#62;&#10;&#10;# forged')
    expect(html).not.toContain('<img')
    expect(html).toContain(`<code>${'b'.repeat(12)}</code>`)
  })

  it('the CLI text names each one on its own line', () => {
    const text = renderReportText(report)
    expect(text).toContain('attestation #1 counted  /w/one.vsa.json')
    expect(text).toContain('attestation #2 refused  /w/two.vsa.json')
    expect(text).toContain("verificationResult: 'FAILED', expected 'PASSED'")
  })

  it('no rebuild-attestation output on a failing verdict, even if a path was recorded', () => {
    const outputs: Record<string, string> = {}
    writeOutputs((name, value) => (outputs[name] = value), report, '/tmp/report.json')
    expect(outputs['rebuild-attestation']).toBeUndefined()
    writeOutputs((name, value) => (outputs[name] = value), { ...report, result: 'verified' }, '/r')
    expect(outputs['rebuild-attestation']).toBe('/tmp/should-not-be-output.json')
  })
})
