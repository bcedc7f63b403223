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
  /** Leaf 7 ECX (UMIP is bit 2); absent means none. */
  readonly leaf7Ecx?: number;
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

// Leaf 1 EDX bits this core implements: FPU(0) DE(2) TSC(4) MSR(5) PAE(6) MCE(7) CX8(8) APIC(9) SEP(11) PGE(13) MCA(14) CMOV(15) PSE(3) PAT(16)
// PSE36(17) MTRR(12). VME(1) and CLFSH(19) are left out until implemented; MMX/SSE/FXSR come with the SIMD work.
const EDX_BASE =
  (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 17);
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

/**
 * QEMU's `Opteron_G1` (an Opteron 240, family 15 model 6 stepping 1): SSE2
 * and SSE3, SYSCALL, NX and long mode, no CMPXCHG16B; without VME, MCE, MCA
 * and CLFLUSH, which this core does not implement yet (as in `qemu64`).
 */
export const OPTERON_G1: CpuModel = {
  ...QEMU64,
  name: 'Opteron_G1',
  signature: 0x000f61,
  brand: 'AMD Opteron 240 (Gen 1 Class Opteron)',
  features: new Set<Feature>(['cx8', 'syscall', 'sep', 'msr', 'tsc', 'cmov', 'lm', 'mmx', ...SSE_FEATURES, 'sse3']),
  leaf1Ecx: (1 << 0) | HYPERVISOR,
  extendedEcx: 0,
  maxLeaf: 5,
  maxExtendedLeaf: 0x80000008,
};

/**
 * QEMU's `max`: everything the core implements. It is `tsvirt-max` plus the
 * protections `tsvirt-max` — the model the Linux boot tests pin — does not
 * offer yet: SMEP, SMAP (CLAC/STAC), UMIP and protection keys for user (PKU:
 * RDPKRU/WRPKRU) and supervisor pages (PKS: IA32_PKRS). PKRU is not an
 * XSAVE component yet.
 */
export const MAX: CpuModel = {
  ...TSVIRT_MAX,
  name: 'max',
  features: new Set<Feature>([...TSVIRT_MAX.features, 'smap', 'pku']),
  // SMEP(7), SMAP(20).
  leaf7Ebx: TSVIRT_MAX.leaf7Ebx | (1 << 7) | (1 << 20),
  // UMIP(2), PKU(3), PKS(31); OSPKE(4) follows CR4.PKE.
  leaf7Ecx: ((1 << 2) | (1 << 3) | (1 << 31)) >>> 0,
};

export const CPU_MODELS: Readonly<Record<string, CpuModel>> = { qemu64: QEMU64, 'tsvirt-max': TSVIRT_MAX, max: MAX, Opteron_G1: OPTERON_G1 };
/** The models code names directly; `parseCpuModel` also knows QEMU's `max` and `Opteron_G1`. */
export type CpuModelName = 'qemu64' | 'tsvirt-max';

type CpuidRegister = 'leaf1Edx' | 'leaf1Ecx' | 'extendedEdx' | 'extendedEcx' | 'leaf7Ebx' | 'leaf7Ecx';

/**
 * CPUID features `-cpu` may switch, by QEMU's names: those this core
 * implements whatever the model (the local APIC's x2APIC mode and TSC-deadline
 * timer, UMIP's checks, RDTSCP). A switch sets or clears the CPUID bit and,
 * for an instruction, whether it decodes.
 */
const CPUID_FEATURE_SWITCHES: Readonly<Record<string, { readonly register: CpuidRegister; readonly bit: number; readonly instruction?: Feature }>> = {
  x2apic: { register: 'leaf1Ecx', bit: 21 },
  'tsc-deadline': { register: 'leaf1Ecx', bit: 24 },
  umip: { register: 'leaf7Ecx', bit: 2 },
  rdtscp: { register: 'extendedEdx', bit: 27, instruction: 'rdtscp' },
};

/** `vendor=` values: the two vendors whose CPUs the models follow. */
const VENDORS = ['GenuineIntel', 'AuthenticAMD'];

/**
 * A CPU model from QEMU's `-cpu` syntax: a model name followed by
 * comma-separated feature switches, `+feature` (or `feature`), `-feature`,
 * `feature=on` or `feature=off` (the last one wins), `vendor=NAME`,
 * `phys-bits=N` and `host-phys-bits` (accepted; the model's width stays). The
 * switchable features are the KVM paravirtual ones ({@link KVM_FEATURE_NAMES})
 * and the CPUID features the core implements in any model (x2apic,
 * tsc-deadline, umip, rdtscp). Throws a RangeError that names the known
 * models or features.
 */
export function parseCpuModel(spec: string): CpuModel {
  const [name = '', ...switches] = spec.split(',');
  const base = CPU_MODELS[name];
  if (base === undefined) throw new RangeError(`unknown CPU model '${name}' (known: ${Object.keys(CPU_MODELS).join(', ')})`);
  if (switches.length === 0) return base;
  let kvmFeatures = base.kvmFeatures;
  const model: { -readonly [Key in keyof CpuModel]: CpuModel[Key] } & { features: Set<Feature> } = { ...base, features: new Set(base.features) };
  for (const item of switches) {
    // QEMU's physical-address width: host-phys-bits is accepted and keeps the model's width (a guest's
    // address space here does not depend on the host's CPU); phys-bits=N sets it.
    if (/^\+?host-phys-bits(=on|=off)?$/.test(item)) continue;
    const physBits = /^phys-bits=(\d+)$/.exec(item);
    if (physBits !== null) {
      const bits = Number(physBits[1]);
      if (bits < 32 || bits > 52) throw new RangeError(`phys-bits=${bits} is not between 32 and 52`);
      model.physicalAddressBits = bits;
      continue;
    }
    const vendor = /^vendor=(.*)$/.exec(item);
    if (vendor !== null) {
      if (!VENDORS.includes(vendor[1]!)) throw new RangeError(`CPU vendor '${vendor[1]}' is not one of ${VENDORS.join(', ')}`);
      model.vendor = vendor[1]!;
      continue;
    }
    const match = /^(?:([+-]?)([a-z0-9-]+)|([a-z0-9-]+)=(on|off))$/.exec(item);
    const feature = match === null ? undefined : (match[2] ?? match[3])!;
    const kvmBits = feature === undefined ? undefined : KVM_FEATURE_NAMES[feature];
    const cpuid = feature === undefined ? undefined : CPUID_FEATURE_SWITCHES[feature];
    if (kvmBits === undefined && cpuid === undefined) {
      const known = [...Object.keys(KVM_FEATURE_NAMES), ...Object.keys(CPUID_FEATURE_SWITCHES)];
      throw new RangeError(`CPU feature switch '${item}' is not vendor=NAME or one of ${known.map((name) => `+${name}/-${name}`).join(', ')}`);
    }
    const on = match![4] === undefined ? match![1] !== '-' : match![4] === 'on';
    if (kvmBits !== undefined) kvmFeatures = on ? kvmFeatures | kvmBits : kvmFeatures & ~kvmBits;
    if (cpuid !== undefined) {
      const value = model[cpuid.register] ?? 0;
      model[cpuid.register] = (on ? value | (1 << cpuid.bit) : value & ~(1 << cpuid.bit)) >>> 0;
      if (cpuid.instruction !== undefined) {
        if (on) model.features.add(cpuid.instruction);
        else model.features.delete(cpuid.instruction);
      }
    }
  }
  model.kvmFeatures = kvmFeatures >>> 0;
  return model;
}
