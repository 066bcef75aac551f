import { expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describeDocker } from '../helpers/docker.js'
import { cli } from '../helpers/cli.js'
import { repoRoot } from '../helpers/paths.js'

const FIVE_MINUTES = 5 * 60 * 1000

describeDocker('npm run demo', () => {
  it(
    'shows verified, then mismatch for one changed weight, then invalid for a swapped dataset',
    async () => {
      const out = mkdtempSync(path.join(os.tmpdir(), 'demo-'))
      const demo = spawnSync(process.execPath, [path.join(repoRoot, 'scripts/demo.mjs')], {
        cwd: repoRoot,
        env: { ...process.env, DEMO_OUT: out },
        encoding: 'utf8',
        timeout: 2 * FIVE_MINUTES
      })
      expect({ status: demo.status, tail: demo.stderr.slice(-2000) }).toEqual({
        status: 0,
        tail: expect.any(String)
      })
      const results = JSON.parse(readFileSync(path.join(out, 'demo-results.json'), 'utf8'))

      expect(results.verified.result).toBe('verified')
      expect(results.verified.capability).toMatch(/^ocap1:[0-9a-f]{64}$/)
      const recomputed = await cli(
        'capability',
        '--sba',
        results.sba,
        '--public-key',
        results.publicKey,
        '--model',
        results.model
      )
      expect(recomputed.code).toBe(0)
      expect(recomputed.stdout.trim()).toBe(results.verified.capability)

      // Logged, witnessed, verified with the proof; the stolen-key signature caught by the monitor.
      expect(results.verified).toMatchObject({
        logIndex: '0',
        logOrigin: 'demo.example/tiny-model-log'
      })
      const logged = await cli(
        'verify-sba',
        results.sba,
        '--public-key',
        results.publicKey,
        '--log-key',
        results.log.logKey,
        '--log-proof',
        results.log.proof,
        '--witness-key',
        results.log.witnessKey,
        '--witness-threshold',
        '1'
      )
      expect(logged.code).toBe(0)
      expect(results.monitor).toEqual({ exitCode: 1, unknown: 1 })

      expect(results.tampered.result).toBe('mismatch')
      expect(results.tampered.explanations['W2.npy'][0]).toMatch(
        /^W2\.npy: 1 of \d+ elements differs \(max \|Δ\| 0\.5/
      )
      expect(results.tampered.explanations['model.safetensors'].join('\n')).toMatch(
        /W2: 1 of \d+ elements differs/
      )

      expect(results.datasetSwap.result).toBe('invalid')
      expect(results.datasetSwap.reason).toMatch(/predicate\.dataset\.digest\.treeSha256/)
      expect(results.datasetSwap.built).toBe(false)

      expect(demo.stdout).toContain('time per phase')
    },
    2 * FIVE_MINUTES + 30_000
  )
})
