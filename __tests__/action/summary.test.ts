import { describe, expect, it } from '@jest/globals'
import { renderSummary, SUMMARY_LIMIT_BYTES } from '../../src/action/summary.js'
import { writeOutputs } from '../../src/action/outputs.js'
import type { Report } from '../../src/verify/report.js'

const entry = (path: string, sha: string, size = 10) => ({ path, size, sha256: sha.repeat(64) })

const verified: Report = {
  schemaVersion: 1,
  mode: 'verify',
  result: 'verified',
  reason: 'the download equals the rebuild',
  checks: [{ name: 'signature', status: 'pass', detail: '1 of 1 trusted key(s) signed' }],
  attestationDigest: 'a'.repeat(64),
  keyIds: ['b'.repeat(64)],
  capability: 'ocap1:' + 'c'.repeat(64),
  reproduced: { root: 'd'.repeat(64), manifest: [entry('W1.npy', '1')] },
  downloaded: { root: 'd'.repeat(64), manifest: [entry('W1.npy', '1')] }
}

const mismatched: Report = {
  ...verified,
  result: 'mismatch',
  reason: 'the download differs from the rebuild: 1 changed',
  capability: undefined,
  checks: [{ name: 'compare', status: 'fail', detail: '<script>alert(1)</script>' }],
  diff: {
    added: [entry('extra.bin', '2')],
    removed: [],
    changed: [{ path: 'W1.npy', expected: entry('W1.npy', '1'), actual: entry('W1.npy', '3', 11) }],
    same: 0
  },
  explanations: { 'W1.npy': ['1 of 4096 elements differ (max |Δ| 0.5 at [12, 3])'] }
}

describe('renderSummary', () => {
  it('puts the verdict first and shows the capability when it passed', () => {
    const html = renderSummary(verified)
    expect(html.startsWith('<h1>✅ verify-model: verified</h1>')).toBe(true)
    expect(html).toContain(verified.capability)
    expect(html).toContain('a'.repeat(64))
  })

  it('shows the changed file with its explanation on mismatch, and escapes HTML', () => {
    const html = renderSummary(mismatched)
    expect(html.startsWith('<h1>❌ verify-model: mismatch</h1>')).toBe(true)
    expect(html).toContain('<code>W1.npy</code>')
    expect(html).toContain('1 of 4096 elements differ')
    expect(html).toContain('extra.bin')
    expect(html).not.toContain('<script>')
    expect(html).toContain('&#60;script&#62;')
    expect(html).not.toContain('Capability:')
  })

  it('keeps a crafted file name from ending the HTML block and rendering as Markdown', () => {
    const crafted = 'x\n\n![verified](https://evil.example/badge.png)\n\n'
    const html = renderSummary({
      ...mismatched,
      diff: { added: [entry(crafted, '5')], removed: [], changed: [], same: 0 }
    })
    expect(html).not.toContain('\n\n![verified]')
    expect(html).toContain('x&#10;&#10;![verified](https://evil.example/badge.png)&#10;&#10;')
  })

  it('shows a failed build log tail collapsed, and stays under the size limit', () => {
    const report: Report = {
      ...mismatched,
      result: 'unverifiable',
      reason: 'the build exited with 1',
      detail: 'x'.repeat(5 * 1024 * 1024),
      diff: {
        added: Array.from({ length: 5000 }, (_, i) => entry(`f${i}`, '4')),
        removed: [],
        changed: [],
        same: 0
      }
    }
    const html = renderSummary(report)
    expect(html).toContain('<details><summary>Build log (tail)</summary>')
    expect(Buffer.byteLength(html)).toBeLessThanOrEqual(SUMMARY_LIMIT_BYTES)
    expect(html).toContain('4800 more file(s)')
  })
})

describe('writeOutputs', () => {
  it('writes the capability only for a passing verdict', () => {
    const written = new Map<string, string>()
    writeOutputs((name, value) => written.set(name, value), verified, '/r.json')
    expect(written.get('capability')).toBe(verified.capability)
    expect(written.get('result')).toBe('verified')
    expect(written.get('report')).toBe('/r.json')

    const failed = new Map<string, string>()
    writeOutputs(
      (name, value) => failed.set(name, value),
      { ...mismatched, capability: 'ocap1:x' },
      '/r.json'
    )
    expect(failed.has('capability')).toBe(false)
    expect(failed.get('result')).toBe('mismatch')
  })
})
