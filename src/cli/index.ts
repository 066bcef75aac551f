#!/usr/bin/env node
import { run } from '../exec.js'
import { processIo } from './io.js'
import { main } from './main.js'

process.exitCode = await main(process.argv.slice(2), { io: processIo, run, exitCode: 0 })
