import type { Command } from 'commander'
import type { CliContext } from '../main.js'
import { registerLogInit } from './log-init.js'
import { registerLogAppend } from './log-append.js'
import { registerLogProve } from './log-prove.js'
import { registerLogCosign } from './log-cosign.js'
import { registerLogMonitor } from './log-monitor.js'

/** `verify-model log …`: a static tiled transparency log, its witness and its monitor. */
export function registerLog(program: Command, context: CliContext): void {
  const log = program
    .command('log')
    .description(
      'A C2SP tiled transparency log of SBAs kept as static files: init, append, prove, cosign, monitor.'
    )
  for (const register of [
    registerLogInit,
    registerLogAppend,
    registerLogProve,
    registerLogCosign,
    registerLogMonitor
  ]) {
    register(log, context)
  }
}
