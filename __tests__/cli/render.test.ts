import { describe, expect, it } from '@jest/globals'
import { renderReportText, stderrReporter } from '../../src/cli/render.js'

function capture(env: NodeJS.ProcessEnv) {
  let stderr = ''
  const reporter = stderrReporter(
    { stdout: () => undefined, stderr: text => (stderr += text) },
    env
  )
  reporter.phase('build')
  reporter.buildLog(Buffer.from('::set-output name=capability::ocap1:forged\n::error::fake'))
  reporter.phase('outputs')
  return stderr
}

describe('stderrReporter', () => {
  it('fences the build log in a workflow step so the runner reads no command in it', () => {
    const stderr = capture({ GITHUB_ACTIONS: 'true' })
    const lines = stderr.split('\n')
    const start = lines.findIndex(line => line.startsWith('::stop-commands::'))
    const token = lines[start].slice('::stop-commands::'.length)
    expect(token).toMatch(/^[0-9a-f]{32}$/)
    const end = lines.indexOf(`::${token}::`)
    expect(end).toBeGreaterThan(lines.indexOf('::set-output name=capability::ocap1:forged'))
    expect(lines.indexOf('::error::fake')).toBeLessThan(end)
    expect(lines.indexOf('==> outputs')).toBeGreaterThan(end)
  })

  it('prints the build log as it is outside a workflow', () => {
    expect(capture({})).toBe(
      '==> build\n::set-output name=capability::ocap1:forged\n::error::fake\n==> outputs\n'
    )
  })
})

describe('renderReportText', () => {
  it('makes every line inert: no crafted name or log line starts a workflow command', () => {
    const text = renderReportText({
      schemaVersion: 1,
      mode: 'verify',
      result: 'mismatch',
      reason: 'the download differs',
      checks: [],
      diff: {
        added: [
          { path: 'x\n::set-output name=capability::ocap1:forged', size: 1, sha256: 'a'.repeat(64) }
        ],
        removed: [],
        changed: [],
        same: 0
      },
      detail: 'build log\n::add-mask::secret'
    })
    expect(text.split('\n').some(line => line.trimStart().startsWith('::'))).toBe(false)
    expect(text).toContain('x\\u000a::set-output')
    expect(text).toContain('\\::add-mask::secret')
  })
})
