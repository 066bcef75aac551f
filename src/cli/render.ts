import { gibibytes } from '../reproduce/limits.js'
import { logLine, logLines } from '../text/sanitize.js'
import { CommandFence } from '../workflow-commands.js'
import type { Reporter } from '../verify/pipeline.js'
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
  let lastProgress = 0
  const write = (chunk: string | Buffer) => io.stderr(chunk.toString())
  const fence = new CommandFence(write, env.GITHUB_ACTIONS === 'true')
  return {
    phase: name => {
      fence.close()
      io.stderr(`==> ${name}\n`)
    },
    info: line => io.stderr(`${logLine(line)}\n`),
    buildLog: chunk => fence.output(chunk),
    end: () => fence.close(),
    hashProgress: (what, progress) => {
      const now = Date.now()
      if (now - lastProgress < 2000 && progress.bytesDone < progress.bytesTotal) return
      lastProgress = now
      const { bytesDone, bytesTotal } = progress
      io.stderr(`    hashing ${what}: ${gibibytes(bytesDone)} / ${gibibytes(bytesTotal)} GiB\n`)
    }
  }
}

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
  const text = lines.map(logLine)
  if (report.detail) text.push('', logLines(report.detail.trimEnd()).join('\n'))
  return text.join('\n') + '\n'
}
