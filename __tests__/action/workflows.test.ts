import { describe, expect, it } from '@jest/globals'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { parse } from 'yaml'
import { repoRoot } from '../helpers/paths.js'

interface Step {
  uses?: string
  run?: string
  with?: Record<string, unknown>
}

const action = parse(readFileSync(path.join(repoRoot, 'action.yml'), 'utf8'))
const declared = new Set(Object.keys(action.inputs))
const workflowsDir = path.join(repoRoot, 'docs/workflows')
const workflows = readdirSync(workflowsDir).filter(name => name.endsWith('.yml'))

describe('action.yml', () => {
  it('runs the bundle on node24 and declares the documented outputs', () => {
    expect(action.runs).toEqual({ using: 'node24', main: 'dist/index.js' })
    expect(Object.keys(action.outputs).sort()).toEqual(
      [
        'attestation-digest',
        'capability',
        'key-ids',
        'log-index',
        'log-origin',
        'model-digest',
        'report',
        'reproduced-digest',
        'result'
      ].sort()
    )
  })
})

describe('example workflows', () => {
  it('exist for consumers, release gating and scheduled re-verification', () => {
    expect(workflows).toEqual(
      expect.arrayContaining([
        'consumer.yml',
        'release-gating.yml',
        'scheduled-reverify.yml',
        'log-monitor.yml'
      ])
    )
  })

  it.each(workflows)('%s parses and only uses declared inputs', name => {
    const workflow = parse(readFileSync(path.join(workflowsDir, name), 'utf8'))
    const steps: Step[] = Object.values(workflow.jobs as Record<string, { steps: Step[] }>).flatMap(
      job => job.steps
    )
    const ours = steps.filter(step => step.uses === 'openclaw/verify-model@v1')
    const cli = steps.filter(step => step.run?.includes('.verify-model/dist/cli/index.js'))
    expect(ours.length + cli.length).toBeGreaterThan(0)
    for (const step of ours) {
      for (const input of Object.keys(step.with ?? {})) expect(declared).toContain(input)
      for (const [input, spec] of Object.entries(
        action.inputs as Record<string, { required?: boolean }>
      )) {
        if (spec.required) expect(Object.keys(step.with ?? {})).toContain(input)
      }
    }
  })

  it('publish to the log at release, verify with the proof as a consumer, monitor on a schedule', () => {
    const text = (name: string) => readFileSync(path.join(workflowsDir, name), 'utf8')
    expect(text('release-gating.yml')).toMatch(
      /log append model\.sba\.json[^\n]*\n[^\n]*-o model\.tlog-proof/
    )
    expect(text('release-gating.yml')).toMatch(/log-proof: model\.tlog-proof\n\s+log-key: /)
    expect(text('consumer.yml')).toMatch(/log-proof: tiny-model\.tlog-proof\n\s+log-key: /)
    const monitor = parse(text('log-monitor.yml'))
    expect(monitor.on.schedule).toHaveLength(1)
    expect(text('log-monitor.yml')).toMatch(
      /log monitor --url \S+ \\\n\s+--log-key "\$LOG_KEY" --public-key publisher\.pub/
    )
  })
})
