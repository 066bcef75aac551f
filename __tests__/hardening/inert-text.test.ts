// Issue 13 items 1 and 13, issue 14 (one sanitiser): nothing a ledger, a build or a downloaded
// file controls acts as a workflow command or reorders what a person reads. Through the bundles
// (node dist/index.js, node dist/cli/index.js under GITHUB_ACTIONS=true), with an oracle that
// trims as .NET does.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import {
  DOTNET_WHITESPACE,
  parseWorkflowCommands,
  runBundledAction,
  spawnNode,
  type BundledActionResult
} from '../helpers/action-runner.js'
import { buildBusyboxImage, describeDocker } from '../helpers/docker.js'
import { repoRoot } from '../helpers/paths.js'
import type { ImageRef } from '../../src/protocol/ledger.js'
import { inBatches, publicKey, signedLedger } from './ledgers.js'

const FORGED = `::set-output name=capability::ocap1:${'f'.repeat(64)}`
const FORGED_V1 = `x ##[set-output name=capability;]ocap1:${'f'.repeat(64)}`
const UNPINNED_ISA = 'the ledger does not pin build.isa, so the result depends'
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/
const hex = (c: string) => `U+${c.charCodeAt(0).toString(16).padStart(4, '0')}`

/** The commands a run's output issues, other than the action's own groups and verdict. */
function forged(log: string): string[] {
  return (
    parseWorkflowCommands(log)
      .filter(c => !['group', 'endgroup', 'error'].includes(c.command))
      // The action's own note on a ledger without build.isa (these test ledgers pin none).
      .filter(c => !(c.command === 'warning' && c.message.startsWith(UNPINNED_ISA)))
      .map(c => `${c.command} ${JSON.stringify(c.properties)} ${c.message}`)
  )
}

describe('the oracle trims as .NET does', () => {
  it('reads a command after every .NET white-space character, U+0085 included', () => {
    for (const c of DOTNET_WHITESPACE)
      if (c !== '\n' && c !== '\r') expect(parseWorkflowCommands(`${c}${FORGED}`)).toHaveLength(1)
    expect(parseWorkflowCommands(`\ufeff${FORGED}`)).toHaveLength(0)
  })
})

describeDocker('inert text through the bundles', () => {
  let dir: string
  let image: ImageRef
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verify-model-inert-'))
    image = await buildBusyboxImage()
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('item 1: no .NET white space lets a declared output name set the capability output', async () => {
    const runs = await inBatches(
      DOTNET_WHITESPACE.map(c => async () => {
        const { sba } = signedLedger(dir, image, { outputs: [`${c}${FORGED}`, FORGED_V1] })
        const run = await runBundledAction(
          { attestation: sba, 'public-key': publicKey, mode: 'reproduce' },
          { baseDir: dir, timeoutMs: 90_000 }
        )
        return [hex(c), run] as const
      }),
      4
    )
    const failures = runs
      .map(([c, run]: readonly [string, BundledActionResult]) => ({
        c,
        result: run.outputs.result,
        capability: run.outputs.capability,
        forged: forged(run.stdout)
      }))
      .filter(r => r.capability !== undefined || r.forged.length > 0 || r.result !== 'unverifiable')
    expect(failures).toEqual([])
  }, 300_000)

  it('item 1: the CLI under GITHUB_ACTIONS=true prints no command from the log tail', async () => {
    const lines = [...DOTNET_WHITESPACE.filter(c => c !== '\n' && c !== '\r'), '\ufeff'].map(
      c => `${c}${FORGED}`
    )
    const script = `printf '%s\\n' ${lines.map(l => `'${l}'`).join(' ')} '${FORGED_V1}'; exit 3`
    const { sba } = signedLedger(
      dir,
      image,
      { command: ['sh', 'build.sh'] },
      { 'build.sh': script }
    )
    const run = await spawnNode(path.join(repoRoot, 'dist/cli/index.js'), {
      args: ['verify', '--sba', sba, '--public-key', publicKey, '--reproduce-only'],
      cwd: dir,
      env: { ...process.env, GITHUB_ACTIONS: 'true' },
      timeoutMs: 90_000
    })
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toMatch(/^unverifiable: the build exited with code 3/)
    expect(forged(`${run.stderr}\n${run.stdout}`)).toEqual([])
  }, 120_000)

  it('items 13 and issue 14: bidirectional controls from file and tensor names are shown escaped', async () => {
    const name = 'evil\u202etxt.bin'
    const tensor = 'w\u202eno'
    const safetensors = (value: number) => {
      const header = Buffer.from(
        JSON.stringify({ [tensor]: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } })
      )
      const length = Buffer.alloc(8)
      length.writeBigUInt64LE(BigInt(header.length))
      const data = Buffer.alloc(4)
      data.writeFloatLE(value)
      return Buffer.concat([length, header, data])
    }
    const { sba } = signedLedger(
      dir,
      image,
      { command: ['sh', '-c', 'cp /src/payload/* /out/'] },
      { 'payload/model.safetensors': safetensors(1), [`payload/${name}`]: 'rebuilt\n' }
    )
    const model = path.join(dir, 'downloaded')
    mkdirSync(model)
    writeFileSync(path.join(model, 'model.safetensors'), safetensors(2))
    writeFileSync(path.join(model, name), 'downloaded\n')

    const action = await runBundledAction(
      { attestation: sba, 'public-key': publicKey, model },
      { baseDir: dir, timeoutMs: 90_000 }
    )
    expect(action.outputs.result).toBe('mismatch')
    expect(action.summary).toContain('evil\\u202etxt.bin')
    expect(action.summary).toContain('w\\u202eno')
    expect(action.summary).not.toMatch(BIDI)
    expect(action.stdout).not.toMatch(BIDI)

    const cliRun = await spawnNode(path.join(repoRoot, 'dist/cli/index.js'), {
      args: ['verify', '--sba', sba, '--public-key', publicKey, '--model', model],
      cwd: dir,
      env: { ...process.env, GITHUB_ACTIONS: 'true' },
      timeoutMs: 90_000
    })
    expect(cliRun.stdout).toMatch(/^mismatch: /)
    expect(cliRun.stdout).toContain('w\\u202eno')
    expect(`${cliRun.stdout}${cliRun.stderr}`).not.toMatch(BIDI)
  }, 180_000)
})
