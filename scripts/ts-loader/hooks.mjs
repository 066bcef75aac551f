// Module hooks: `./x.js` resolves to `./x.ts` when only the TypeScript file exists (the source
// tree's NodeNext imports), and `.ts` files are transpiled (types stripped, no type check).
// Transpiled output is cached by content under the temporary directory: loading the compiler
// takes seconds, and every worker thread a test starts would pay for it.
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const cacheDir = path.join(os.tmpdir(), 'verify-model-ts-loader')

export async function resolve(specifier, context, nextResolve) {
  if (specifier.endsWith('.js') && context.parentURL?.startsWith('file:')) {
    const url = new URL(specifier, context.parentURL)
    const typescript = new URL(url.href.replace(/\.js$/, '.ts'))
    if (!existsSync(fileURLToPath(url)) && existsSync(fileURLToPath(typescript)))
      return { url: typescript.href, shortCircuit: true }
  }
  return nextResolve(specifier, context)
}

export async function load(url, context, nextLoad) {
  if (!url.endsWith('.ts')) return nextLoad(url, context)
  const file = fileURLToPath(url)
  const source = await readFile(file, 'utf8')
  const key = createHash('sha256').update(file).update('\0').update(source).digest('hex')
  const cached = path.join(cacheDir, `${key}.js`)
  const hit = await readFile(cached, 'utf8').catch(() => undefined)
  return {
    format: 'module',
    source: hit ?? (await transpile(file, source, cached)),
    shortCircuit: true
  }
}

async function transpile(file, source, cached) {
  const { default: ts } = await import('typescript')
  const { outputText } = ts.transpileModule(source, {
    fileName: file,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      inlineSourceMap: true
    }
  })
  await mkdir(cacheDir, { recursive: true })
  const partial = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}`
  await writeFile(partial, outputText)
  await rename(partial, cached)
  return outputText
}
