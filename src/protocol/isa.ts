// The ISA profile of PROTOCOL.md section 4.1: the CPU levels a ledger may pin (`build.isa`),
// the /proc/cpuinfo flags each level needs, and the variables that cap the libraries' kernels.

export const ISA_LEVELS = ['x86-64-v2', 'x86-64-v3', 'x86-64-v4'] as const
export type IsaLevel = (typeof ISA_LEVELS)[number]

/** The only platform with levels (PROTOCOL.md section 2). */
export const ISA_PLATFORM = 'linux/amd64'

/** Each level's own flags, as /proc/cpuinfo names them; a level needs its own and all below. */
const OWN_FLAGS: Record<IsaLevel, readonly string[]> = {
  'x86-64-v2': ['cx16', 'lahf_lm', 'popcnt', 'sse4_1', 'sse4_2', 'ssse3'],
  'x86-64-v3': ['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave'],
  'x86-64-v4': ['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl']
}

// The glibc hwcaps (MASK_*) and NumPy features (NPY_*) above each level, nested as 4.1 defines them.
const MASK_V4 = [
  'AVX512ER',
  'AVX512PF',
  'AVX512_4FMAPS',
  'AVX512_4VNNIW',
  'AVX512_BITALG',
  'AVX512_IFMA',
  'AVX512_VBMI',
  'AVX512_VBMI2',
  'AVX512_VNNI',
  'AVX512_VPOPCNTDQ',
  'AVX512_BF16',
  'AVX512_FP16',
  'AVX_VNNI',
  'AMX_BF16',
  'AMX_INT8',
  'AMX_TILE'
]
const MASK_V3 = ['AVX512F', 'AVX512BW', 'AVX512CD', 'AVX512DQ', 'AVX512VL', ...MASK_V4]
const MASK_V2 = ['AVX', 'AVX2', 'BMI1', 'BMI2', 'F16C', 'FMA', 'FMA4', 'LZCNT', 'MOVBE', ...MASK_V3]
const NPY_V4 = [
  'AVX512_KNL',
  'AVX512_KNM',
  'AVX512_CLX',
  'AVX512_CNL',
  'AVX512_ICL',
  'AVX512_SPR',
  'AVX512FP16'
]
const NPY_V3 = ['AVX512F', 'AVX512CD', 'AVX512_SKX', ...NPY_V4]
const NPY_V2 = ['AVX', 'F16C', 'FMA3', 'AVX2', ...NPY_V3]

interface LevelCaps {
  glibcMask: readonly string[]
  numpyDisabled: readonly string[]
  aten: string
  onednn: string
  mklCbwr: string
  mkl: string
  openblas: string
}

const CAPS: Record<IsaLevel, LevelCaps> = {
  'x86-64-v2': {
    glibcMask: MASK_V2,
    numpyDisabled: NPY_V2,
    aten: 'default',
    onednn: 'SSE41',
    mklCbwr: 'SSE4_2',
    mkl: 'SSE4_2',
    openblas: 'Nehalem'
  },
  'x86-64-v3': {
    glibcMask: MASK_V3,
    numpyDisabled: NPY_V3,
    aten: 'avx2',
    onednn: 'AVX2',
    mklCbwr: 'AVX2',
    mkl: 'AVX2',
    openblas: 'Haswell'
  },
  'x86-64-v4': {
    glibcMask: MASK_V4,
    numpyDisabled: NPY_V4,
    aten: 'avx512',
    onednn: 'AVX512_CORE',
    mklCbwr: 'AVX512',
    mkl: 'AVX512',
    openblas: 'SkylakeX'
  }
}

export function isIsaLevel(value: string): value is IsaLevel {
  return (ISA_LEVELS as readonly string[]).includes(value)
}

/** Negative when `a` is a lower level than `b`, zero when equal. */
export function compareIsaLevels(a: IsaLevel, b: IsaLevel): number {
  return ISA_LEVELS.indexOf(a) - ISA_LEVELS.indexOf(b)
}

/** Every /proc/cpuinfo flag a CPU needs for the level (its own and those of the levels below). */
export function isaCpuFlags(level: IsaLevel): string[] {
  return ISA_LEVELS.slice(0, ISA_LEVELS.indexOf(level) + 1).flatMap(l => OWN_FLAGS[l])
}

/** The variables the level adds to the build's environment: exactly the strings of 4.1. */
export function isaProfileEnv(level: IsaLevel): Record<string, string> {
  const caps = CAPS[level]
  return {
    GLIBC_TUNABLES: `glibc.cpu.hwcaps=${caps.glibcMask.map(x => `-${x}`).join(',')}`,
    NPY_DISABLE_CPU_FEATURES: caps.numpyDisabled.join(' '),
    ATEN_CPU_CAPABILITY: caps.aten,
    DNNL_MAX_CPU_ISA: caps.onednn,
    ONEDNN_MAX_CPU_ISA: caps.onednn,
    MKL_CBWR: `${caps.mklCbwr},STRICT`,
    MKL_ENABLE_INSTRUCTIONS: caps.mkl,
    OPENBLAS_CORETYPE: caps.openblas
  }
}

/** The names every profile sets (the same for every level). */
export const ISA_PROFILE_VARIABLES: readonly string[] = Object.keys(isaProfileEnv('x86-64-v3'))
