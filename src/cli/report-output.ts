import { writeFile } from 'node:fs/promises'
import { isPassing } from '../errors.js'
import type { Report } from '../verify/report.js'
import { printJson } from './io.js'
import { EXIT_FAILED, EXIT_PASS, type CliContext } from './context.js'
import { renderReportText } from './render.js'

/** A verifying command's report: the file (--report), stdout as JSON or text, the exit code. */
export async function outputReport(
  context: CliContext,
  report: Report,
  options: { report?: string; json?: boolean }
): Promise<void> {
  if (context.cancelled?.()) return
  if (options.report) await writeFile(options.report, JSON.stringify(report, null, 2) + '\n')
  if (options.json) printJson(context.io, report)
  else context.io.stdout(renderReportText(report))
  context.exitCode = isPassing(report.result) ? EXIT_PASS : EXIT_FAILED
}
