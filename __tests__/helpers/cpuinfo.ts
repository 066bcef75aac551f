// /proc/cpuinfo text as Linux writes it on x86, for tests that need another runner's CPU.

/** The flags of an AMD EPYC (Zen 4 under KVM), AVX-512 included: CI machines may lack it. */
export const EPYC_FLAGS =
  'fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx512_bf16 clzero xsaveerptr arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm'

/** The same CPU without AVX-512, like GitHub's hosted AMD EPYC x64 runners in recent reports. */
export const EPYC_NO_AVX512_FLAGS = EPYC_FLAGS.split(' ')
  .filter(flag => !flag.startsWith('avx512'))
  .join(' ')

/** One block per CPU, each with the given flags (`flags[i]` for processor i). */
export function cpuInfoText(flags: readonly string[], vendor = 'AuthenticAMD'): string {
  return flags
    .map(
      (line, processor) =>
        `processor\t: ${processor}\nvendor_id\t: ${vendor}\ncpu family\t: 25\nmodel name\t: Test CPU\nflags\t\t: ${line}\nbogomips\t: 5192.26\n\n`
    )
    .join('')
}
