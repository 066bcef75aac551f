import { threadWorkers } from '../../src/digest/workers.js'

/** `node --import tsLoader` runs this repository's TypeScript modules without a build. */
export const tsLoader = new URL('../../scripts/ts-loader/register.mjs', import.meta.url).href

/**
 * Real hashing threads running the TypeScript worker module (src/digest/digest-worker.ts, the
 * module ncc bundles as dist/digest-worker.js) through that loader.
 */
export const testThreads = threadWorkers({
  script: new URL('../../src/digest/digest-worker.ts', import.meta.url),
  execArgv: ['--import', tsLoader]
})
