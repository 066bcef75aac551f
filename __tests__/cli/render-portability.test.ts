import { describe, expect, it } from '@jest/globals'
import { renderCrossCheckText, renderReportText } from '../../src/cli/render.js'
import { findCpuModel } from '../../src/reproduce/emulation.js'
import { UNPINNED_ISA_NOTE } from '../../src/verify/report.js'

const haswell = findCpuModel('Haswell')!
const entry = (digit: string) => ({ path: 'model.safetensors', size: 8, sha256: digit.repeat(64) })

describe('the CLI text for portability', () => {
  it("says an unpinned ledger's result depends on the CPU, and nothing for a pinned one", () => {
    const report = {
      schemaVersion: 1 as const,
      mode: 'verify' as const,
      result: 'verified' as const,
      reason: 'the download equals the rebuild',
      checks: []
    }
    const unpinned = renderReportText({ ...report, isa: null, cpuDependence: UNPINNED_ISA_NOTE })
    expect(unpinned.split('\n')).toContain(`  note: ${UNPINNED_ISA_NOTE}`)
    expect(renderReportText({ ...report, isa: 'x86-64-v3' })).not.toContain('note:')
  })

  it('renders each cross-check verdict, with what differs and the fix', () => {
    const base = { cpu: haswell, root: 'f'.repeat(64), nativePrograms: [] }
    expect(renderCrossCheckText({ ...base, verdict: 'portable' }, 'x86-64-v3')).toBe(
      'portable: the build under qemu-user -cpu Haswell (intel, x86-64-v3) gave the same root (build.isa x86-64-v3)\n'
    )
    const different = renderCrossCheckText(
      {
        ...base,
        verdict: 'not portable',
        diff: {
          added: [],
          removed: [],
          changed: [{ path: 'model.safetensors', expected: entry('a'), actual: entry('b') }],
          same: 0
        },
        explanations: {
          'model.safetensors': ['model.safetensors: 2 tensors differ', '  ::error::x']
        }
      },
      'x86-64-v3'
    ).split('\n')
    expect(different[0]).toBe(
      'not portable: the build under qemu-user -cpu Haswell (intel, x86-64-v3) gave root ffffffffffff, not the native one (build.isa x86-64-v3)'
    )
    expect(different[1]).toBe(
      '  changed  model.safetensors (8 B, sha256 aaaaaaaaaaaa → 8 B, sha256 bbbbbbbbbbbb)'
    )
    expect(different[2]).toBe('           model.safetensors: 2 tensors differ')
    expect(different.every(line => !line.startsWith('::'))).toBe(true)
    expect(different.at(-2)).toContain(
      'fix: the training depends on the CPU beyond what the ISA profile caps'
    )
  })
})
