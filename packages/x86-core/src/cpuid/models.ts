import type { Feature } from '../decoder/opcode-entry.js';

/** A named CPU model: what CPUID reports and which optional instructions decode. */
export interface CpuModel {
  readonly name: string;
  readonly vendor: string;
  /** Family/model/stepping signature for leaf 1 EAX. */
  readonly signature: number;
  readonly brand: string;
  readonly features: ReadonlySet<Feature>;
  /** Leaf 1 EDX/ECX and leaf 0x80000001 EDX/ECX bits as advertised. */
  readonly leaf1Edx: number;
  readonly leaf1Ecx: number;
  readonly extendedEdx: number;
  readonly extendedEcx: number;
  /** Leaf 7 EBX. */
  readonly leaf7Ebx: number;
  readonly maxLeaf: number;
  readonly maxExtendedLeaf: number;
  /** Physical and linear address widths for leaf 0x80000008. */
  readonly physicalAddressBits: number;
  /**
   * KVM's paravirtual features (leaf 0x40000001 EAX, see {@link KvmFeature}).
   * Zero hides the KVM leaves altogether, as QEMU's `kvm=off` does.
   */
  readonly kvmFeatures: number;
}

/** Bits of CPUID leaf 0x40000001 EAX (Linux's `KVM_FEATURE_*`) that this core implements. */
export enum KvmFeature {
  /** kvmclock through MSRs 0x11 (wall clock) and 0x12 (system time). */
  Clocksource = 1 << 0,
  /** No delay is needed after port I/O (the guest may drop its port 0x80 writes). */
  NopIoDelay = 1 << 1,
  /** kvmclock through MSRs 0x4b564d00 and 0x4b564d01. */
  Clocksource2 = 1 << 3,
  /** The pvclock structures may set PVCLOCK_TSC_STABLE_BIT: the clock never needs a global monotonicity fix-up. */
  ClocksourceStableBit = 1 << 24,
}

/**
 * KVM features by QEMU's `-cpu` names; QEMU's `kvmclock` covers both
 * clocksource bits, and so does ours.
 */
export const KVM_FEATURE_NAMES: Readonly<Record<string, number>> = {
  kvmclock: KvmFeature.Clocksource | KvmFeature.Clocksource2,
  'kvm-nopiodelay': KvmFeature.NopIoDelay,
  'kvmclock-stable-bit': KvmFeature.ClocksourceStableBit,
};

/** What QEMU with KVM offers a `qemu64` guest of these features. */
const KVM_DEFAULT = KvmFeature.Clocksource | KvmFeature.NopIoDelay | KvmFeature.Clocksource2 | KvmFeature.ClocksourceStableBit;

// Leaf 1 EDX bits this core implements: FPU(0) DE(2) TSC(4) MSR(5) PAE(6) CX8(8) APIC(9) SEP(11) PGE(13) CMOV(15) PSE(3) PAT(16) PSE36(17) MTRR(12).
// VME(1), MCE(7), MCA(14), CLFSH(19) are left out until implemented; MMX/SSE/FXSR come with the SIMD work.
const EDX_BASE = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 8) | (1 << 9) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 15) | (1 << 16) | (1 << 17);
// MMX(23): the integer MMX instructions, on the x87 registers.
const MMX = 1 << 23;
// FXSR(24), SSE(25), SSE2(26): FXSAVE/FXRSTOR with the SSE state, and the SSE/SSE2 instructions.
const SSE = (1 << 24) | (1 << 25) | (1 << 26);
const SSE_FEATURES: readonly Feature[] = ['fxsr', 'sse', 'sse2'];
// Leaf 1 ECX HYPERVISOR(31), as QEMU sets for every model: guests then skip what only bare metal has (microcode
// loading, which reads MSRs no virtual CPU implements).
const HYPERVISOR = 1 << 31;
// Extended EDX: SYSCALL(11), NX(20), RDTSCP(27), LM(29).
const EXT_EDX_BASE = (1 << 11) | (1 << 20) | (1 << 29);

/** A conservative baseline in the spirit of QEMU's `qemu64`, without the FPU/SSE bits this core lacks so far. */
export const QEMU64: CpuModel = {
  name: 'qemu64',
  vendor: 'AuthenticAMD',
  signature: 0x000663,
  brand: 'tsvirt qemu64-compatible CPU',
  features: new Set<Feature>(['cx8', 'cx16', 'syscall', 'sep', 'msr', 'tsc', 'cmov', 'lm', 'mmx', ...SSE_FEATURES]),
  leaf1Edx: EDX_BASE | MMX | SSE,
  // CX16(13) is implemented and qemu64 has it.
  leaf1Ecx: (1 << 13) | HYPERVISOR,
  extendedEdx: EXT_EDX_BASE,
  extendedEcx: 1 << 0 /* LAHF/SAHF in 64-bit mode */,
  leaf7Ebx: 0,
  maxLeaf: 0xd,
  maxExtendedLeaf: 0x8000000a,
  physicalAddressBits: 40,
  kvmFeatures: KVM_DEFAULT,
};

/** Everything the core implements: adds POPCNT, LZCNT, MOVBE, RDTSCP, SSSE3, SSE4.1, SSE4.2, BMI1, BMI2, ADX. */
export const TSVIRT_MAX: CpuModel = {
  ...QEMU64,
  name: 'tsvirt-max',
  vendor: 'GenuineIntel',
  signature: 0x0306a9,
  brand: 'tsvirt max CPU',
  features: new Set<Feature>(['cx8', 'cx16', 'syscall', 'sep', 'msr', 'tsc', 'cmov', 'lm', 'mmx', 'popcnt', 'lzcnt', 'movbe', 'rdtscp', 'ssse3', 'sse4_1', 'sse4_2', ...SSE_FEATURES, 'sse3', 'xsave', 'xsaveopt', 'bmi1', 'bmi2', 'adx']),
  // SSE3(0), SSSE3(9), CX16(13), SSE4.1(19), SSE4.2(20), MOVBE(22), POPCNT(23), XSAVE(26) (x87 and SSE state; OSXSAVE(27) follows CR4).
  leaf1Ecx: (1 << 0) | (1 << 9) | (1 << 13) | (1 << 19) | (1 << 20) | (1 << 22) | (1 << 23) | (1 << 26) | HYPERVISOR,
  extendedEdx: EXT_EDX_BASE | (1 << 27),
  // LAHF(0), ABM/LZCNT(5).
  extendedEcx: (1 << 0) | (1 << 5),
  // BMI1(3), BMI2(8), ADX(19).
  leaf7Ebx: (1 << 3) | (1 << 8) | (1 << 19),
};

export const CPU_MODELS: Readonly<Record<string, CpuModel>> = { qemu64: QEMU64, 'tsvirt-max': TSVIRT_MAX };
export type CpuModelName = 'qemu64' | 'tsvirt-max';

/**
 * A CPU model from QEMU's `-cpu` syntax: a model name followed by
 * comma-separated feature switches, `+feature` (or `feature`), `-feature`,
 * `feature=on` or `feature=off` (the last one wins). The switchable features are the KVM
 * paravirtual ones ({@link KVM_FEATURE_NAMES}). Throws a RangeError that names
 * the known models or features.
 */
export function parseCpuModel(spec: string): CpuModel {
  const [name = '', ...switches] = spec.split(',');
  const base = CPU_MODELS[name];
  if (base === undefined) throw new RangeError(`unknown CPU model '${name}' (known: ${Object.keys(CPU_MODELS).join(', ')})`);
  let kvmFeatures = base.kvmFeatures;
  for (const item of switches) {
    const match = /^(?:([+-]?)([a-z0-9-]+)|([a-z0-9-]+)=(on|off))$/.exec(item);
    const feature = match === null ? undefined : (match[2] ?? match[3])!;
    const bits = feature === undefined ? undefined : KVM_FEATURE_NAMES[feature];
    if (bits === undefined) throw new RangeError(`CPU feature switch '${item}' is not one of ${Object.keys(KVM_FEATURE_NAMES).map((known) => `+${known}/-${known}`).join(', ')}`);
    const on = match![4] === undefined ? match![1] !== '-' : match![4] === 'on';
    kvmFeatures = on ? kvmFeatures | bits : kvmFeatures & ~bits;
  }
  return kvmFeatures === base.kvmFeatures ? base : { ...base, kvmFeatures: kvmFeatures >>> 0 };
}
