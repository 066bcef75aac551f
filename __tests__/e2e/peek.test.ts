import { it } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { runBundledAction } from '../helpers/action-runner.js'
import { buildBusyboxImage } from '../helpers/docker.js'
import { publishModel } from '../helpers/fixture.js'
import { cpSync, readFileSync, writeFileSync } from 'node:fs'

it('peek', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'peek-'))
  const p = await publishModel(path.join(dir, 'pub'), { image: await buildBusyboxImage() })
  const t = path.join(dir, 'tm'); cpSync(p.modelDir, t, { recursive: true })
  const w = path.join(t, 'weights.bin'); const b = readFileSync(w); b[3] ^= 1; writeFileSync(w, b)
  for (const inputs of [{ model: p.modelDir, dataset: p.datasetDir }, { model: t, dataset: p.datasetDir }]) {
    const r = await runBundledAction({ attestation: p.sbaPath, 'public-key': p.publicKey, ...inputs }, { baseDir: dir })
    console.log(r.exitCode, r.stdout, '\n----STDERR\n', r.stderr, '\n----SUMMARY\n', r.summary, '\n---OUT\n', JSON.stringify(r.outputs, null, 1))
  }
  console.log(dir)
}, 120000)
