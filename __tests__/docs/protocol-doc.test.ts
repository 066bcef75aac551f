import { describe, expect, it } from '@jest/globals'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { repoRoot, vectorsDir } from '../helpers/paths.js'

// docs/protocol.md is the normative text the code, the README and the messages cite.
const doc = readFileSync(path.join(repoRoot, 'docs/protocol.md'), 'utf8')

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const file = path.join(dir, name)
    return statSync(file).isDirectory() ? filesUnder(file) : [file]
  })
}

const citing = [
  ...filesUnder(path.join(repoRoot, 'src')),
  ...['README.md', 'SECURITY.md', 'action.yml', 'docs/performance.md'].map(name =>
    path.join(repoRoot, name)
  )
]

describe('docs/protocol.md', () => {
  it('has sections 1 to 9, each with its rationale', () => {
    const sections = [...doc.matchAll(/^## (\d+)\. .+$/gm)].map(match => Number(match[1]))
    expect(sections).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    const bodies = doc.split(/^## \d+\. /m).slice(1)
    for (const body of bodies) expect(body).toMatch(/^_Why:_/m)
  })

  it('is the only protocol text cited: every "docs/protocol.md section N" names a section', () => {
    const headings = new Set(
      [...doc.matchAll(/^#{2,3} (\d+(?:\.\d+)?)\.? /gm)].map(match => match[1])
    )
    let references = 0
    for (const file of citing) {
      const text = readFileSync(file, 'utf8')
      expect({ file, cites: /PROTOCOL\.md/.test(text) }).toEqual({ file, cites: false })
      for (const match of text.matchAll(
        /docs\/protocol\.md sections? ([\d.]+(?:(?:, | and )[\d.]+)*)/g
      )) {
        for (const section of match[1].split(/, | and /)) {
          references++
          expect({ file, section, exists: headings.has(section.replace(/\.$/, '')) }).toEqual({
            file,
            section,
            exists: true
          })
        }
      }
    }
    expect(references).toBeGreaterThan(20)
  })

  it('spells the ISA profile exactly as vectors/isa-profiles.json (section 4.1)', () => {
    const list = (name: string): string[] => {
      const match = new RegExp(`^- ${name}: ([^.]+?)(?:, then (\\w+))?\\.$`, 'm').exec(
        doc.replace(/\n +/g, ' ')
      )
      if (!match) throw new Error(`${name} not found`)
      const own = match[1].replace(/`/g, '').split(/\s+/)
      return match[2] ? [...own, ...list(match[2])] : own
    }
    const vectors = JSON.parse(
      readFileSync(path.join(vectorsDir, 'isa-profiles.json'), 'utf8')
    ) as { levels: Record<string, Record<string, string>> }
    const table = new Map(
      [
        ...doc.matchAll(
          /^\| `([A-Z_]+)`(?: and `([A-Z_]+)`)? *\| `([^`]+)` *\| `([^`]+)` *\| `([^`]+)` *\|$/gm
        )
      ].flatMap(row =>
        [row[1], row[2]].filter(Boolean).map(name => [name, row.slice(3, 6)] as const)
      )
    )
    for (const [index, level] of ['x86-64-v2', 'x86-64-v3', 'x86-64-v4'].entries()) {
      const v = `V${index + 2}`
      const expected = vectors.levels[level]
      const documented: Record<string, string> = {
        GLIBC_TUNABLES: `glibc.cpu.hwcaps=${list(`MASK_${v}`)
          .map(name => `-${name}`)
          .join(',')}`,
        NPY_DISABLE_CPU_FEATURES: list(`NPY_${v}`).join(' ')
      }
      for (const [name, values] of table) documented[name] = values[index]
      expect(documented).toEqual(expected)
    }
  })
})
