import { run } from './main.js'

await run()
// The verdict is written: end the step now, even if a call abandoned at its time limit (a cache
// service that never answered) still holds a socket open. The exit code is what run() set.
process.exit()
