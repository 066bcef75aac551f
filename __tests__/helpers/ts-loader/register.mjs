// `node --import <this file>`: runs TypeScript modules of this repository without a build, for
// worker threads started from tests (ts-jest compiles only what jest itself loads).
import { register } from 'node:module'

register('./hooks.mjs', import.meta.url)
