import { CommandFence, inertLine } from '../workflow-commands.js'
import type { Reporter } from '../verify/pipeline.js'
import { hashProgressLines } from '../verify/progress.js'
import { describeEntry, type Report } from '../verify/report.js'
import type { CliIo } from './io.js'

/**
 * Progress and build log on stderr, so stdout stays the command's result. In a workflow step
 * (GITHUB_ACTIONS=true) the build log is fenced so the runner reads no workflow command in it.
 */
export function stderrReporter(
  io: CliIo,
  env: NodeJS.ProcessEnv = process.env
): Reporter & { end(): void } {
  const hashLine = hashProgressLines(2000)
  const write = (chunk: string | Buffer) => io.stderr(chunk.toString())
  const fence = new CommandFence(write, env.GITHUB_ACTIONS === 'true')
  return {
    phase: name => {
      fence.close()
      io.stderr(`==> ${name}\n`)
    },
    info: line => io.stderr(`${inertLine(line)}\n`),
    buildLog: chunk => fence.output(chunk),
    end: () => fence.close(),
    hashProgress: (what, progress) => {
      const line = hashLine(what, progress)
      if (line !== undefined) io.stderr(`    ${line}\n`)
    }
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

/**
 * The human form of a report: the verdict first, then the facts behind it. Every line is made
 * inert: file names, reasons and the log tail come from the ledger, the build or the download.
 */
export function renderReportText(report: Report): string {
  const lines = [`${report.result}: ${report.reason}`]
  const fact = (label: string, value: string | undefined) => {
    if (value !== undefined) lines.push(`  ${label.padEnd(20)} ${value}`)
  }
  fact('attestation-digest', report.attestationDigest)
  fact('key-ids', report.keyIds?.join(', '))
  fact('reproduced-digest', report.reproduced?.root)
  fact('model-digest', report.downloaded?.root)
  fact('capability', report.capability)
  const timed = report.checks.filter(check => check.durationMs !== undefined)
  fact(
    'phases',
    timed.length > 0
      ? timed.map(check => `${check.name} ${seconds(check.durationMs!)}`).join(', ')
      : undefined
  )
  if (report.diff) {
    for (const entry of report.diff.added)
      lines.push(`  added    ${entry.path} (${describeEntry(entry)})`)
    for (const entry of report.diff.removed)
      lines.push(`  removed  ${entry.path} (${describeEntry(entry)})`)
    for (const change of report.diff.changed) {
      lines.push(
        `  changed  ${change.path} (${describeEntry(change.expected)} → ${describeEntry(change.actual)})`
      )
      for (const line of report.explanations?.[change.path] ?? []) lines.push(`           ${line}`)
    }
  }
  if (report.detail) lines.push('', ...report.detail.trimEnd().split('\n'))
  return lines.map(inertLine).join('\n') + '\n'
}
