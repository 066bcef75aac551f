import { logLine, logLines } from '../text/sanitize.js'
import { CommandFence } from '../workflow-commands.js'
import type { Reporter } from '../verify/pipeline.js'
import { hashProgressLines } from '../verify/progress.js'
import { describeEntry, shortDigest, type Report, type SegmentsReport } from '../verify/report.js'
import type { CrossCheckResult } from '../verify/cross-check.js'
import type { IsaLevel } from '../protocol/isa.js'
import { describeCpuModel } from '../reproduce/emulation.js'
import type { ManifestDiff } from '../compare/manifest-diff.js'
import type { CliIo } from './io.js'
import { describeEscape, describeSpotCheck } from '../verify/segments.js'

/** `3 of 8 segments re-run`, the escape chances, then one line per segment. */
function segmentLines(segments: SegmentsReport): string[] {
  return [
    `  ${describeSpotCheck(segments)}; ${describeEscape(segments)}`,
    ...segments.runs.map(
      row =>
        `  segment ${row.index} ${row.status}: /prev ${row.prevRoot ?? '(none)'} → ${row.root ?? '(not run)'}, transcript S_${row.index} ${row.expectedRoot}${row.durationMs === undefined ? '' : ` in ${(row.durationMs / 1000).toFixed(1)} s`}`
    )
  ]
}

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
    info: line => io.stderr(`${logLine(line)}\n`),
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
  if (report.segments) for (const line of segmentLines(report.segments)) lines.push(line)
  fact('rebuild-attestation', report.rebuildAttestation)
  for (const [i, v] of (report.rebuildAttestations ?? []).entries()) {
    lines.push(`  attestation #${i + 1} ${v.counted ? 'counted' : 'refused'}  ${v.source}`)
    if (!v.counted) lines.push(`           ${v.why}`)
  }
  fact('log-index', report.log && String(report.log.index))
  fact('log-origin', report.log?.origin)
  if (report.diff) for (const line of diffLines(report.diff, report.explanations)) lines.push(line)
  if (report.cpuDependence) lines.push(`  note: ${report.cpuDependence}`)
  const text = lines.map(logLine)
  if (report.detail) text.push('', logLines(report.detail.trimEnd()).join('\n'))
  return text.join('\n') + '\n'
}

function diffLines(diff: ManifestDiff, explanations?: Record<string, string[]>): string[] {
  const lines: string[] = []
  for (const entry of diff.added) lines.push(`  added    ${entry.path} (${describeEntry(entry)})`)
  for (const entry of diff.removed) lines.push(`  removed  ${entry.path} (${describeEntry(entry)})`)
  for (const change of diff.changed) {
    lines.push(
      `  changed  ${change.path} (${describeEntry(change.expected)} → ${describeEntry(change.actual)})`
    )
    for (const line of explanations?.[change.path] ?? []) lines.push(`           ${line}`)
  }
  return lines
}

/** `build --cross-check`'s verdict, then (when not portable) what differs, file by file. */
export function renderCrossCheckText(result: CrossCheckResult, isa: IsaLevel | undefined): string {
  const cpu = describeCpuModel(result.cpu)
  const pinned = isa === undefined ? 'unpinned ledger' : `build.isa ${isa}`
  const lines =
    result.verdict === 'portable'
      ? [`portable: the build under ${cpu} gave the same root (${pinned})`]
      : result.verdict === 'inconclusive'
        ? [
            `inconclusive: the build under ${cpu} gave the same root, but it exec'd programs that ran on this machine's CPU, not the emulated one (${pinned})`,
            `  fix: run the interpreter itself as build.command (e.g. python3 train.py, not sh -c …)`
          ]
        : [
            `not portable: the build under ${cpu} gave root ${shortDigest(result.root)}, not the native one (${pinned})`,
            ...diffLines(result.diff!, result.explanations),
            isa === undefined
              ? '  fix: pin the CPU level with build.isa (verify-model ledger init --isa x86-64-v3) and cross-check again'
              : '  fix: the training depends on the CPU beyond what the ISA profile caps: see the differences above'
          ]
  if (result.nativePrograms.length > 0)
    lines.push(`  ran natively, not emulated: ${result.nativePrograms.join(', ')}`)
  return lines.map(logLine).join('\n') + '\n'
}
