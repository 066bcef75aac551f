import { isPassing } from '../errors.js'
import { escapeHtml } from '../text/sanitize.js'
import type { ManifestEntry } from '../digest/types.js'
import { shortDigest, type Report } from '../verify/report.js'
import { describeEscape, describeSpotCheck } from '../verify/segments.js'

/** GitHub rejects a step summary over 1 MiB; stay well below it. */
export const SUMMARY_LIMIT_BYTES = 900 * 1024
const MAX_DIFF_ROWS = 200
const MAX_LOG_TAIL_CHARS = 32 * 1024

const ICONS: Record<Report['result'], string> = {
  verified: '✅',
  reproduced: '✅',
  mismatch: '❌',
  invalid: '⛔',
  unverifiable: '⚠️'
}

/** Escaped text whose `backtick spans` (commands, flags in messages) render as code. */
function textHtml(text: string): string {
  const parts = text.split('`')
  // An unpaired backtick is plain text: nothing is rendered as code then.
  if (parts.length % 2 === 0) return escapeHtml(text)
  return parts
    .map((part, i) =>
      i % 2 === 0
        ? escapeHtml(part)
        : part === ''
          ? '&#96;&#96;'
          : `<code>${escapeHtml(part)}</code>`
    )
    .join('')
}

/** The job summary: the verdict first and large, then what differs, the checks, the evidence. */
export function renderSummary(report: Report): string {
  const parts = [
    `<h1>${ICONS[report.result]} verify-model: ${escapeHtml(report.result)}</h1>`,
    `<p><b>${textHtml(report.reason)}</b></p>`,
    isPassing(report.result) && report.capability
      ? `<p>Capability: <code>${escapeHtml(report.capability)}</code></p>`
      : '',
    report.cpuDependence ? `<p>⚠️ CPU: ${escapeHtml(report.cpuDependence)}</p>` : '',
    renderDiff(report),
    renderSegments(report),
    renderRebuildAttestations(report),
    renderChecks(report),
    renderFacts(report),
    renderDetail(report)
  ]
  const html = parts.filter(Boolean).join('\n')
  return truncateUtf8(html, SUMMARY_LIMIT_BYTES)
}

/** A spot check: `k of N segments re-run`, the escape chances, one row per re-run segment. */
function renderSegments(report: Report): string {
  const { segments } = report
  if (!segments) return ''
  const code = (hex: string | undefined) => (hex ? `<code>${shortDigest(hex)}</code>` : '')
  const rows = segments.runs.map(
    row =>
      `<tr><td>${row.status === 'pass' ? '✅' : '❌'}</td><td>${row.index}</td><td>${code(row.prevRoot)}</td><td>${code(row.expectedRoot)}</td><td>${code(row.root)}</td><td>${row.durationMs === undefined ? '' : `${(row.durationMs / 1000).toFixed(1)} s`}</td></tr>`
  )
  return [
    `<h2>Segments: ${escapeHtml(describeSpotCheck(segments))}</h2>`,
    `<p>${escapeHtml(describeEscape(segments))}.</p>`,
    `<table><tr><th></th><th>segment</th><th>/prev root S<sub>i−1</sub></th><th>transcript S<sub>i</sub></th><th>re-run root</th><th>time</th></tr>\n${rows.join('\n')}\n</table>`
  ].join('\n')
}

function renderChecks(report: Report): string {
  if (report.checks.length === 0) return ''
  const rows = report.checks.map(
    check =>
      `<tr><td>${check.status === 'pass' ? '✅' : check.status === 'fail' ? '❌' : '➖'}</td><td>${escapeHtml(check.name)}</td><td>${textHtml(check.detail)}</td><td>${check.durationMs === undefined ? '' : `${(check.durationMs / 1000).toFixed(1)} s`}</td></tr>`
  )
  return `<h2>Checks</h2>\n<table><tr><th></th><th>check</th><th>detail</th><th>time</th></tr>\n${rows.join('\n')}\n</table>`
}

function renderFacts(report: Report): string {
  const facts: [string, string | undefined][] = [
    ['mode', report.mode],
    ['attestation digest', report.attestationDigest],
    ['signing key ids', report.keyIds?.join(', ')],
    ['source', report.source && `${report.source.uri} @ ${report.source.commit}`],
    ['image', report.image],
    ['dataset root', report.datasetRoot],
    ['CPU level (build.isa)', report.isa === undefined ? undefined : (report.isa ?? 'unpinned')],
    [
      'build',
      report.build &&
        `exit ${report.build.exitCode} in ${(report.build.durationMs / 1000).toFixed(1)} s`
    ],
    // One row when the two agree: the root is the model's name, said once.
    ...rootFacts(report),
    [
      'log entry',
      report.log &&
        `index ${report.log.index} of ${report.log.treeSize} in ${report.log.origin}, root ${report.log.root}`
    ],
    ['log witnesses', report.log && (report.log.witnesses.join(', ') || 'none required')],
    ['expected capability', report.expectedCapability],
    ['capability', report.capability],
    ['rebuild attestation (signed)', report.rebuildAttestation]
  ]
  const rows = facts
    .filter((fact): fact is [string, string] => fact[1] !== undefined)
    .map(
      ([name, value]) =>
        `<tr><td>${escapeHtml(name)}</td><td><code>${escapeHtml(value)}</code></td></tr>`
    )
  return `<h2>Details</h2>\n<table>\n${rows.join('\n')}\n</table>`
}

function rootFacts(report: Report): [string, string | undefined][] {
  const reproduced = report.reproduced?.root
  const downloaded = report.downloaded?.root
  if (reproduced !== undefined && reproduced === downloaded) return [['model root', reproduced]]
  return [
    ['reproduced root', reproduced],
    ['downloaded root', downloaded]
  ]
}

/** Mode attested: each attestation given, whether it counted and, if not, why. */
function renderRebuildAttestations(report: Report): string {
  const verdicts = report.rebuildAttestations
  if (!verdicts) return ''
  const counted = verdicts.filter(v => v.counted).length
  const rows = verdicts.map(
    (v, i) =>
      `<tr><td>${v.counted ? '✅' : '❌'}</td><td>${i + 1}</td><td><code>${escapeHtml(v.source)}</code></td><td>${escapeHtml(v.verifierId ?? '')}</td><td>${v.keyIds.map(id => `<code>${shortDigest(id)}</code>`).join(' ')}</td><td>${v.counted ? 'counted' : escapeHtml(v.why)}</td></tr>`
  )
  return `<h2>Rebuild attestations (${counted} counted, threshold ${report.rebuilderThreshold ?? '?'})</h2>\n<table><tr><th></th><th>#</th><th>attestation</th><th>verifier</th><th>rebuilder key</th><th>why not</th></tr>\n${rows.join('\n')}\n</table>`
}

function renderDiff(report: Report): string {
  if (!report.diff) return ''
  const { added, removed, changed } = report.diff
  const entry = (e: ManifestEntry) => `${e.size} B <code>${shortDigest(e.sha256)}</code>`
  const rows = [
    ...changed.map(
      c =>
        `<tr><td>changed</td><td><code>${escapeHtml(c.path)}</code></td><td>${entry(c.expected)}</td><td>${entry(c.actual)}</td><td>${textHtml((report.explanations?.[c.path] ?? []).join('; '))}</td></tr>`
    ),
    ...added.map(
      e =>
        `<tr><td>added</td><td><code>${escapeHtml(e.path)}</code></td><td></td><td>${entry(e)}</td><td></td></tr>`
    ),
    ...removed.map(
      e =>
        `<tr><td>removed</td><td><code>${escapeHtml(e.path)}</code></td><td>${entry(e)}</td><td></td><td></td></tr>`
    )
  ]
  const shown = rows.slice(0, MAX_DIFF_ROWS)
  const more =
    rows.length > shown.length
      ? `<p>… and ${rows.length - shown.length} more file(s): see the JSON report.</p>`
      : ''
  return `<h2>Differences (rebuild → download)</h2>\n<table><tr><th></th><th>file</th><th>rebuilt</th><th>downloaded</th><th>what differs</th></tr>\n${shown.join('\n')}\n</table>${more}`
}

function renderDetail(report: Report): string {
  const detail = report.detail ?? (isPassing(report.result) ? undefined : report.build?.logTail)
  if (!detail) return ''
  const tail =
    detail.length > MAX_LOG_TAIL_CHARS ? `…\n${detail.slice(-MAX_LOG_TAIL_CHARS)}` : detail
  return `<details><summary>Build log (tail)</summary>\n\n<pre>${escapeHtml(tail)}</pre>\n</details>`
}

function truncateUtf8(text: string, limit: number): string {
  if (Buffer.byteLength(text) <= limit) return text
  const note = '\n<p>(summary truncated: see the JSON report)</p>'
  let cut = Buffer.from(text)
    .subarray(0, limit - Buffer.byteLength(note))
    .toString('utf8')
  cut = cut.replace(/\uFFFD$/, '')
  return cut + note
}
