import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import { DOTNET_WHITESPACE, parseWorkflowCommands } from '../helpers/action-runner.js'
import { clip, escapeHtml, escapeUnsafe, logLine, logLines } from '../../src/text/sanitize.js'

const FORGED = '::set-output name=capability::ocap1:ff'
const BIDI = [
  '\u061c',
  '\u200e',
  '\u200f',
  '\u202a',
  '\u202b',
  '\u202c',
  '\u202d',
  '\u202e'
].concat(['\u2066', '\u2067', '\u2068', '\u2069'])

describe('logLine', () => {
  it('keeps ordinary text', () => {
    expect(logLine('verify-model-0a1b: python3 train.py')).toBe(
      'verify-model-0a1b: python3 train.py'
    )
  })

  it('neutralises a leading :: after any run of .NET white space, and ##[ anywhere', () => {
    for (const c of DOTNET_WHITESPACE) {
      const line = logLine(`${c}${c}${FORGED}`)
      expect(parseWorkflowCommands(line)).toEqual([])
      expect(line).not.toMatch(/[\n\r]/)
    }
    expect(logLine('x ##[error]y')).toBe('x ##\\[error]y')
    expect(logLine('::error::x')).toBe('\\::error::x')
  })

  it('never lets the runner read a command, for any mix of white space, colons and brackets', () => {
    const alphabet = [...DOTNET_WHITESPACE, '\ufeff', ':', '#', '[', ']', 'a', ' ', '%']
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...alphabet), { maxLength: 12 }),
        fc.constantFrom('set-output name=capability', 'add-mask', 'stop-commands', 'error'),
        (prefix, command) => {
          const text = `${prefix.join('')}::${command}::x\n##[${command}]y`
          expect(parseWorkflowCommands(logLines(text).join('\n'))).toEqual([])
          expect(parseWorkflowCommands(logLine(text))).toEqual([])
        }
      ),
      { numRuns: 2000, seed: 13 }
    )
  })

  it('is idempotent, so applying it at two boundaries changes nothing', () => {
    for (const text of [`\u0085${FORGED}`, 'a\nb', 'x##[y', '\u202eabc'])
      expect(logLine(logLine(text))).toBe(logLine(text))
  })
})

describe('escapeUnsafe and clip', () => {
  it('shows controls, separators and every bidirectional control as \\uXXXX', () => {
    for (const c of [...BIDI, '\u0000', '\u001b', '\u007f', '\u0085', '\u2028', '\u2029'])
      expect(escapeUnsafe(`a${c}b`)).toBe(`a\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}b`)
  })

  it('cuts before escaping, so a cut never splits an escape', () => {
    expect(clip('x'.repeat(100), 80)).toBe(`${'x'.repeat(80)}…`)
    expect(clip('\u202eab', 80)).toBe('\\u202eab')
  })
})

describe('escapeHtml', () => {
  it('shows bidirectional controls as text (an entity would still reorder) and keeps line breaks as entities', () => {
    const html = escapeHtml(`<b>evil\u202etxt.bin</b>\n\n# heading`)
    expect(html).toBe('&#60;b&#62;evil\\u202etxt.bin&#60;/b&#62;&#10;&#10;# heading')
    for (const c of BIDI) expect(escapeHtml(c)).not.toContain(c)
  })
})
