import { describe, expect, it } from '@jest/globals'
import { groupReporter, type LogCore } from '../../src/action/log.js'
import { parseWorkflowCommands } from '../helpers/action-runner.js'

/** A log as @actions/core writes it to stdout, with the raw build log in the same stream. */
function recordedLog() {
  let text = ''
  const core: LogCore = {
    info: message => (text += `${message}\n`),
    startGroup: name => (text += `::group::${name}\n`),
    endGroup: () => (text += '::endgroup::\n')
  }
  const write = (chunk: string | Buffer) => (text += chunk.toString())
  return { core, write, text: () => text }
}

const FORGED = [
  '::set-output name=capability::ocap1:forged',
  '  ::error title=x::forged',
  'progress ##[set-output name=result;]forged',
  '::add-mask::verified',
  '::stop-commands::forged'
]

describe('groupReporter', () => {
  it('fences the build log: the runner obeys none of its lines, only the groups', () => {
    const log = recordedLog()
    const reporter = groupReporter(log.core, log.write)
    reporter.phase('build')
    reporter.buildLog(Buffer.from(`${FORGED.join('\n')}\n`))
    reporter.buildLog(Buffer.from('a last line without its newline'))
    reporter.phase('outputs')
    reporter.info('after the build')
    reporter.end()

    expect(log.text()).toContain(`${FORGED.join('\n')}\na last line without its newline\n`)
    expect(parseWorkflowCommands(log.text())).toEqual([
      { command: 'group', properties: {}, message: 'build' },
      { command: 'endgroup', properties: {}, message: '' },
      { command: 'group', properties: {}, message: 'outputs' },
      { command: 'endgroup', properties: {}, message: '' }
    ])
    expect(log.text()).toMatch(/\nafter the build\n::endgroup::\n$/)
  })

  it('uses a fresh resume token per build, and none without build output', () => {
    const tokens = () => {
      const log = recordedLog()
      const reporter = groupReporter(log.core, log.write)
      reporter.phase('build')
      reporter.buildLog(Buffer.from('x\n'))
      reporter.end()
      return /::stop-commands::([0-9a-f]{32})\n/.exec(log.text())?.[1]
    }
    const first = tokens()
    expect(first).toMatch(/^[0-9a-f]{32}$/)
    expect(tokens()).not.toBe(first)

    const quiet = recordedLog()
    const reporter = groupReporter(quiet.core, quiet.write)
    reporter.phase('build')
    reporter.end()
    expect(quiet.text()).toBe('::group::build\n::endgroup::\n')
  })

  it('makes ledger text in info lines inert', () => {
    const log = recordedLog()
    const reporter = groupReporter(log.core, log.write)
    for (const line of [...FORGED, 'sh -c "x\n::error::forged"', 'a\r::error::forged'])
      reporter.info(line)
    expect(parseWorkflowCommands(log.text())).toEqual([])
  })
})
