// The job summary of real runs (runAction in-process, real Docker builds), rendered by headless
// Chromium as a reader sees it: the DOM text is checked and a screenshot kept for a person.
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { runAction, type ActionCore } from '../../src/action/main.js'
import { run } from '../../src/exec.js'
import { treeSha256 } from '../../src/digest/tree.js'
import { buildBusyboxImage, describeDocker } from '../helpers/docker.js'
import { publishModel, type PublishedModel } from '../helpers/fixture.js'
import { describeRequiring } from '../helpers/requirements.js'

const chromiumAvailable = () => spawnSync('chromium', ['--version']).status === 0

let dir: string
let published: PublishedModel
/** Kept after the run for a person to look at (printed by the test). */
const screenshots = path.join(os.tmpdir(), 'verify-model-summary-screenshots')

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'summary-render-'))
  mkdirSync(screenshots, { recursive: true })
}, 300_000)

afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Run {
  summary: string
  outputs: Record<string, string>
  failed: string[]
}

async function runWith(inputs: Record<string, string>): Promise<Run> {
  const result: Run = { summary: '', outputs: {}, failed: [] }
  const core: ActionCore = {
    getInput: name => inputs[name] ?? '',
    setSecret: () => undefined,
    setOutput: (name, value) => void (result.outputs[name] = value),
    setFailed: message => void result.failed.push(message),
    error: () => undefined,
    warning: () => undefined,
    info: () => undefined,
    startGroup: () => undefined,
    endGroup: () => undefined,
    writeSummary: async html => void (result.summary = html)
  }
  await runAction({
    core,
    run,
    download: async () => {
      throw new Error('no download in this test')
    },
    cache: {
      isFeatureAvailable: () => false,
      restoreCache: async () => undefined,
      saveCache: async () => 0
    },
    env: { RUNNER_TEMP: dir, GITHUB_RUN_ID: '1' }
  })
  return result
}

/** Chromium's rendered DOM and a screenshot of the summary page. */
function render(name: string, summary: string): { text: string; screenshot: string } {
  const page = path.join(dir, `${name}.html`)
  writeFileSync(
    page,
    `<!doctype html><html><head><meta charset="utf-8"><style>body{font-family:sans-serif;max-width:1100px;margin:16px} table{border-collapse:collapse} td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left} code{background:#eff1f3;padding:1px 4px}</style></head><body>${summary}</body></html>`
  )
  const screenshot = path.join(screenshots, `${name}.png`)
  const flags = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    `--user-data-dir=${mkdtempSync(path.join(dir, 'chromium-profile-'))}`,
    '--window-size=1200,1300'
  ]
  execFileSync('chromium', [...flags, `--screenshot=${screenshot}`, `file://${page}`], {
    stdio: 'ignore',
    timeout: 60_000
  })
  const dom = execFileSync('chromium', [...flags, '--dump-dom', `file://${page}`], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: 60_000
  })
  expect(existsSync(screenshot)).toBe(true)
  console.log(`summary screenshot: ${screenshot}`)
  return { text: textOf(dom), screenshot }
}

/** The text a reader sees: tags removed, entities decoded. */
function textOf(html: string): string {
  return html
    .replace(/<style[\s\S]*?<\/style>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#(\d+);/g, (_, code) => String.fromCharCode(Number(code)))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
}

/** Rows of the Checks table: [status icon, name, detail, time]. */
function checkRows(html: string): string[][] {
  const table = /<h2>Checks<\/h2>\s*<table>([\s\S]*?)<\/table>/.exec(html)?.[1] ?? ''
  return [...table.matchAll(/<tr>(?!<th>)([\s\S]*?)<\/tr>/g)].map(row =>
    [...row[1].matchAll(/<td>([\s\S]*?)<\/td>/g)].map(cell => textOf(cell[1]).trim())
  )
}

describeDocker('the job summary in a browser', () => {
  describeRequiring(
    'with headless Chromium',
    chromiumAvailable,
    'Chromium is required in CI: run bash scripts/chromium.sh',
    () => {
      beforeAll(async () => {
        published = await publishModel(path.join(dir, 'published'), {
          image: await buildBusyboxImage()
        })
      }, 300_000)

      const inputs = () => ({
        attestation: published.sbaPath,
        'public-key': published.publicKey,
        dataset: published.datasetDir
      })

      it('verified: the verdict, every check with its detail and time, the root said twice', async () => {
        const result = await runWith({ ...inputs(), model: published.modelDir })
        expect(result.failed).toEqual([])
        const { text } = render('verified', result.summary)
        expect(text).toContain('verify-model: verified')
        expect(text).not.toContain('`')
        const rows = checkRows(result.summary)
        expect(rows.map(row => row[1])).toEqual([
          'signature',
          'source',
          'dependencies',
          'dataset',
          'image',
          'build',
          'outputs',
          'hash',
          'compare'
        ])
        for (const [icon, name, detail, time] of rows) {
          expect({ name, icon, detailGiven: detail !== '', time }).toEqual({
            name,
            icon: '✅',
            detailGiven: true,
            time: expect.stringMatching(/^\d+\.\d s$/)
          })
        }
        expect(text.split(published.modelRoot).length - 1).toBe(2)
      }, 300_000)

      it('mismatch: the differing file first, backtick spans rendered as code', async () => {
        const tampered = path.join(dir, 'tampered')
        execFileSync('cp', ['-r', published.modelDir, tampered])
        writeFileSync(path.join(tampered, 'weights.bin'), 'not the weights\n')
        const result = await runWith({ ...inputs(), model: tampered })
        expect(result.outputs.result).toBe('mismatch')
        const { text } = render('mismatch', result.summary)
        expect(text).not.toContain('`')
        expect(text.indexOf('weights.bin')).toBeLessThan(text.indexOf('Checks'))
        const failed = checkRows(result.summary).filter(row => row[0] === '❌')
        expect(failed.map(row => row[1])).toEqual(['compare'])
      }, 300_000)

      it('a dataset that does not match: the fix in the message renders as code', async () => {
        const other = path.join(dir, 'other-data')
        mkdirSync(other)
        writeFileSync(path.join(other, 'train.csv'), '0,0\n')
        const result = await runWith({ ...inputs(), dataset: other, model: published.modelDir })
        expect(result.outputs.result).toBe('invalid')
        expect(result.summary).toContain('<code>ledger init --dataset DIR</code>')
        expect(render('invalid-dataset', result.summary).text).not.toContain('`')
        // The phases that passed before the failure still say what they did.
        expect(
          checkRows(result.summary).map(([icon, name, detail]) => [icon, name, detail !== ''])
        ).toEqual([
          ['✅', 'signature', true],
          ['✅', 'source', true],
          ['✅', 'dependencies', true],
          ['❌', 'dataset', true]
        ])
      }, 300_000)

      it('reproduce with outputs-dir keeps the outputs and outputs their path', async () => {
        const outputsDir = path.join(dir, 'kept-outputs')
        const result = await runWith({ ...inputs(), mode: 'reproduce', 'outputs-dir': outputsDir })
        expect(result.outputs).toMatchObject({ result: 'reproduced', 'outputs-dir': outputsDir })
        expect((await treeSha256(outputsDir)).root).toBe(published.modelRoot)
        expect(readFileSync(path.join(outputsDir, 'config.json'), 'utf8')).toContain(
          'sourceDateEpoch'
        )
        render('reproduced', result.summary)
      }, 300_000)
    }
  )
})
