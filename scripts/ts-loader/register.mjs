// `node --import <this file>`: runs TypeScript modules of this repository without a build: for
// worker threads started from tests (ts-jest compiles only what jest itself loads) and for the
// benchmark asking src/digest/read-size.ts what it chooses.
import { register } from 'node:module'

register('./hooks.mjs', import.meta.url)
