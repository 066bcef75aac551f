// The publisher's cross-CPU check (`verify-model build --cross-check`): the same build again
// under qemu-user as a CPU of the ledger's level from the other vendor, and the two roots
// compared. Never part of `verify` or the action.
import { unverifiable, VerifyError } from '../errors.js'
import type { Ledger } from '../protocol/ledger.js'
import type { TreeDigest } from '../digest/types.js'
import { diffManifests, type ManifestDiff } from '../compare/manifest-diff.js'
import { explainMismatchLines } from '../compare/explain.js'
import { parseCpuInfo, readProcCpuInfo, type CpuInfoReader } from '../reproduce/cpu-features.js'
import { crossCheckModel, describeCpuModel, type QemuCpuModel } from '../reproduce/emulation.js'
import { reproduce, type ReproduceDeps, type ReproduceOptions } from '../reproduce/index.js'

export interface CrossCheckResult {
  /** The emulated CPU the second build ran on. */
  cpu: QemuCpuModel
  root: string
  /** `inconclusive`: the same root, but the build exec'd programs that ran natively. */
  verdict: 'portable' | 'not portable' | 'inconclusive'
  /** Programs the emulated build exec'd: they ran on this machine's CPU, not the emulated one. */
  nativePrograms: string[]
  /** Present when not portable: per file, the native build (expected) against the emulated one. */
  diff?: ManifestDiff
  /** Per changed file, the lines of src/compare's explanation (tensors, keys, bytes). */
  explanations?: Record<string, string[]>
}

/**
 * The CPU model for a cross-check on this host: undefined means qemu emulates no CPU of the
 * ledger's level (then the check cannot run).
 */
export async function chooseCrossCheckCpu(
  ledger: Ledger,
  readCpuInfo: CpuInfoReader = readProcCpuInfo
): Promise<QemuCpuModel> {
  const vendor = parseCpuInfo(await readCpuInfo().catch(() => '')).vendor
  const model = crossCheckModel(ledger.build.isa, vendor)
  if (model === undefined)
    throw unverifiable(
      `--cross-check: qemu-user emulates no ${ledger.build.isa} CPU (qemu 7.2's TCG has no AVX-512), so this ledger cannot be cross-checked here: run the build on a second machine with ${ledger.build.isa} and compare the roots`
    )
  return model
}

/**
 * Runs the build under emulation as `cpu` and compares its outputs with those of the native
 * build in `nativeOutDir`. The emulated outputs are kept in `emulatedOutDir`.
 */
export async function crossCheck(
  ledger: Ledger,
  native: { outputs: TreeDigest; outDir: string },
  cpu: QemuCpuModel,
  options: ReproduceOptions & { qemuPath: string; emulatedOutDir: string },
  deps: ReproduceDeps
): Promise<CrossCheckResult> {
  const { qemuPath, emulatedOutDir, ...reproduceOptions } = options
  const emulated = await reproduce(
    ledger,
    { ...reproduceOptions, keepOutputsIn: emulatedOutDir, emulate: { qemuPath, model: cpu } },
    deps
  ).catch((error: unknown) => {
    // The native build passed: say that it is the emulated one that failed.
    if (!(error instanceof VerifyError)) throw error
    throw new VerifyError(
      error.verdict,
      `--cross-check: the build under ${describeCpuModel(cpu)} failed: ${error.message}`,
      error.detail,
      { code: error.code, cause: error }
    )
  })
  const root = emulated.outputs.root
  const nativePrograms = emulated.nativePrograms ?? []
  if (root === native.outputs.root)
    return {
      cpu,
      root,
      verdict: nativePrograms.length > 0 ? 'inconclusive' : 'portable',
      nativePrograms
    }
  const diff = diffManifests(native.outputs.manifest, emulated.outputs.manifest)
  const explanations = await explainMismatchLines(native.outDir, emulatedOutDir, diff)
  return { cpu, root, verdict: 'not portable', nativePrograms, diff, explanations }
}
