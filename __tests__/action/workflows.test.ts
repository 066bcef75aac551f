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
        'rebuild-attestation',
        'report',
        'reproduced-digest',
        'result',
        'segments-matrix'
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

describe('the segmented spot-check workflow (PROTOCOL.md section 9)', () => {
  interface Job {
    needs?: string | string[]
    outputs?: Record<string, string>
    strategy?: { matrix?: Record<string, string> }
    steps: (Step & { id?: string })[]
  }
  const workflow = parse(
    readFileSync(path.join(workflowsDir, 'segmented-spot-check.yml'), 'utf8')
  ) as { jobs: Record<string, Job> }
  const ours = (job: Job) => job.steps.filter(step => step.uses === 'openclaw/verify-model@v1')

  it('plans with mode plan, fans out over segments-matrix, and gates the release on every job', () => {
    const { plan, 'spot-check': spotCheck, release } = workflow.jobs
    const [planner] = ours(plan)
    expect(planner.with).toMatchObject({ mode: 'plan', transcript: expect.any(String) })
    expect(Object.keys(action.outputs)).toContain('segments-matrix')
    expect(plan.outputs?.segments).toBe(`\${{ steps.${planner.id}.outputs.segments-matrix }}`)

    expect(spotCheck.needs).toBe('plan')
    expect(spotCheck.strategy?.matrix?.segment).toBe('${{ fromJSON(needs.plan.outputs.segments) }}')
    const [checker] = ours(spotCheck)
    expect(checker.with?.mode ?? 'verify').toBe('verify')
    // One index per job, in the list form (a bare number would draw that many at random).
    expect(checker.with?.segments).toBe('${{ matrix.segment }},')
    expect(checker.with).toMatchObject({
      transcript: expect.any(String),
      model: expect.any(String)
    })

    expect(release.needs).toBe('spot-check')
  })
})

describe('rebuild attestation workflows', () => {
  const load = (name: string) => parse(readFileSync(path.join(workflowsDir, name), 'utf8'))
  const ourStep = (workflow: { jobs: Record<string, { steps: Step[] }> }) =>
    Object.values(workflow.jobs)
      .flatMap(job => job.steps)
      .find(step => step.uses === 'openclaw/verify-model@v1')!

  it('a scheduled rebuilder signs a VSA for each of several models and publishes it', () => {
    const workflow = load('rebuilder.yml')
    expect(workflow.on.schedule).toEqual([{ cron: expect.any(String) }])
    expect(workflow.jobs.rebuild.strategy.matrix.model.length).toBeGreaterThanOrEqual(2)
    const step = ourStep(workflow)
    expect(step.with?.['attest-key']).toBe('${{ secrets.REBUILDER_ATTEST_KEY }}')
    const text = readFileSync(path.join(workflowsDir, 'rebuilder.yml'), 'utf8')
    expect(text).toContain('steps.rebuild.outputs.rebuild-attestation')
    expect(text).toContain('actions/upload-artifact')
    expect(text).toContain('gh release upload')
  })

  it('a consumer accepts on 2 of 3 rebuilders', () => {
    const step = ourStep(load('consumer-attested.yml'))
    expect(step.with?.mode).toBe('attested')
    expect(String(step.with?.['rebuilder-threshold'])).toBe('2')
    expect(String(step.with?.['rebuild-attestations']).trim().split('\n')).toHaveLength(3)
  })
})
