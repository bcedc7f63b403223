import type { CpuCore as Cpu } from '../cpu-core.js';
import { isKvmClockMsr, KvmClockMsr } from '../paravirt/kvm-clock.js';
import { Cr0, Efer, Seg } from '../state/registers.js';

/** MSR numbers the core knows. */
export enum Msr {
  TSC = 0x10,
  APIC_BASE = 0x1b,
  /** IA32_TSC_DEADLINE: the local APIC's, present when CPUID.01H:ECX[24] (TSC-deadline) says so. */
  TSC_DEADLINE = 0x6e0,
  /** IA32_PKRS: protection-key rights for supervisor pages, present when CPUID.07H:ECX[31] (PKS) says so. */
  PKRS = 0x6e1,
  FEATURE_CONTROL = 0x3a,
  BIOS_SIGN_ID = 0x8b,
  MTRR_CAP = 0xfe,
  SYSENTER_CS = 0x174,
  SYSENTER_ESP = 0x175,
  SYSENTER_EIP = 0x176,
  /** Machine-check architecture: capabilities (read-only), status, control; banks from MC0_CTL, four MSRs each. */
  MCG_CAP = 0x179,
  MCG_STATUS = 0x17a,
  MCG_CTL = 0x17b,
  MC0_CTL = 0x400,
  MISC_ENABLE = 0x1a0,
  PAT = 0x277,
  MTRR_DEF_TYPE = 0x2ff,
  EFER = 0xc0000080,
  STAR = 0xc0000081,
  LSTAR = 0xc0000082,
  CSTAR = 0xc0000083,
  FMASK = 0xc0000084,
  FS_BASE = 0xc0000100,
  GS_BASE = 0xc0000101,
  KERNEL_GS_BASE = 0xc0000102,
  TSC_AUX = 0xc0000103,
  /** AMD's legacy performance event selects PerfEvtSel0–3 (K7 on; "K7_EVNTSEL" in Linux and QEMU). */
  K7_EVNTSEL0 = 0xc0010000,
  /** AMD's legacy performance counters PerfCtr0–3, 48 bits wide. */
  K7_PERFCTR0 = 0xc0010004,
}

/**
 * PerfEvtSel's reserved bits, which a write may not set (AMD APM vol. 2,
 * "Performance Event-Select Registers"): bit 21 of the low half; in the high
 * half everything but EventSelect[11:8] (bits 35:32) and HostGuestOnly (41:40).
 */
const K7_EVNTSEL_RESERVED_LOW = 1 << 21;
const K7_EVNTSEL_RESERVED_HIGH = ~0x30f;
/** PerfCtr is 48 bits: what a write puts above bit 47 is dropped (as KVM does). */
const K7_PERFCTR_HIGH_MASK = 0xffff;

function isMachineCheckMsr(index: number): boolean {
  return (index >= Msr.MCG_CAP && index <= Msr.MCG_CTL) || (index >= Msr.MC0_CTL && index < Msr.MC0_CTL + 4 * MCE_BANKS);
}

/** AMD's four legacy event selects and counters, which every AMD processor from the K7 on has. */
function isK7PerfMsr(index: number): boolean {
  return index >= Msr.K7_EVNTSEL0 && index <= Msr.K7_PERFCTR0 + 3;
}

const TWO_32 = 4294967296;
const CPUID_TSC_DEADLINE = 1 << 24;
/** CPUID.01H:EDX MCE (7) and MCA (14): with both (and family 6 or later) the machine-check MSRs exist. */
const CPUID_MCE_MCA = (1 << 7) | (1 << 14);
/**
 * MCG_CAP as QEMU gives its models: 10 banks, MCG_CTL present (MCG_CTL_P,
 * bit 8) and software error recovery (MCG_SER_P, bit 24). No machine check is
 * ever raised: the banks only hold what software writes.
 */
const MCE_BANKS = 10;
const MCG_CAP_VALUE = MCE_BANKS | (1 << 8) | (1 << 24);
const CPUID_PKS = 1 << 31;

/** MSRs kept as plain 64-bit storage: writes are remembered, reads return them. */
export function isStored(index: number): boolean {
  return (
    index === Msr.SYSENTER_CS || index === Msr.SYSENTER_ESP || index === Msr.SYSENTER_EIP || index === Msr.MISC_ENABLE ||
    index === Msr.PAT || index === Msr.MTRR_DEF_TYPE || (index >= 0x200 && index <= 0x20f) || isFixedRangeMtrr(index) || index === Msr.STAR || index === Msr.LSTAR || index === Msr.CSTAR ||
    index === Msr.FMASK || index === Msr.KERNEL_GS_BASE || index === Msr.TSC_AUX || index === Msr.FEATURE_CONTROL || index === Msr.BIOS_SIGN_ID ||
    isKvmClockMsr(index) || isK7PerfMsr(index) || index === Msr.PKRS || index === Msr.MCG_STATUS || index === Msr.MCG_CTL ||
    (index >= Msr.MC0_CTL && index < Msr.MC0_CTL + 4 * MCE_BANKS)
  );
}

/** MTRR memory types: UC 0, WC 1, WT 4, WP 5, WB 6 (2, 3 and 7 are reserved and raise #GP). */
function isMtrrType(type: number): boolean {
  return type === 0 || type === 1 || (type >= 4 && type <= 6);
}

function isFixedRangeMtrr(index: number): boolean {
  return index === 0x250 || index === 0x258 || index === 0x259 || (index >= 0x268 && index <= 0x26f);
}

/** Registers that must hold canonical addresses (#GP otherwise). */
function needsCanonical(index: number): boolean {
  return index === Msr.LSTAR || index === Msr.CSTAR || index === Msr.FS_BASE || index === Msr.GS_BASE || index === Msr.KERNEL_GS_BASE || index === Msr.SYSENTER_EIP || index === Msr.SYSENTER_ESP;
}

/**
 * Model-specific registers. Reads put the value in `cpu.msrValue` (low,
 * high); unknown MSRs make RDMSR/WRMSR raise #GP, as on hardware.
 */
export class MsrFile {
  private readonly low = new Map<number, number>();
  private readonly high = new Map<number, number>();
  /** APIC_BASE when no local APIC is attached. */
  private apicBaseLow = 0;

  constructor(private readonly cpu: Cpu) {}

  reset(): void {
    this.low.clear();
    this.high.clear();
    this.set(Msr.PAT, 0x00070406, 0x00070406);
    this.set(Msr.MISC_ENABLE, 1, 0);
    this.apicBaseLow = 0xfee00000 | 0x800 | (this.cpu.bootstrap ? 0x100 : 0);
    // Every error source enabled, as QEMU resets them.
    this.set(Msr.MCG_CTL, -1, -1);
    for (let bank = 0; bank < MCE_BANKS; bank++) this.set(Msr.MC0_CTL + 4 * bank, -1, -1);
  }

  /** Every stored MSR, for saving state. */
  entries(): Array<{ index: number; low: number; high: number }> {
    return [...this.low.keys()].sort((a, b) => a - b).map((index) => ({ index, low: this.low.get(index)! >>> 0, high: this.high.get(index)! >>> 0 }));
  }

  /** APIC_BASE as kept without a local APIC. */
  get apicBase(): number {
    return this.apicBaseLow >>> 0;
  }

  set apicBase(value: number) {
    this.apicBaseLow = value;
  }

  /** Puts back a saved MSR; false for an index that is not kept as plain storage. */
  restoreEntry(index: number, low: number, high: number): boolean {
    if (!isStored(index)) return false;
    this.set(index, low, high);
    return true;
  }

  set(index: number, low: number, high: number): void {
    this.low.set(index, low | 0);
    this.high.set(index, high | 0);
  }

  /** The stored value's low half (0 when never written). */
  lowOf(index: number): number {
    return this.low.get(index) ?? 0;
  }

  highOf(index: number): number {
    return this.high.get(index) ?? 0;
  }

  /** A stored MSR as a signed number (for canonical addresses). */
  numberOf(index: number): number {
    return this.highOf(index) * TWO_32 + (this.lowOf(index) >>> 0);
  }

  read(index: number): boolean {
    const cpu = this.cpu;
    const out = cpu.msrValue;
    index >>>= 0;
    if (index === Msr.TSC_DEADLINE) return this.offersTscDeadline() && cpu.apic!.readMsr(index, out);
    if ((index >= 0x800 && index <= 0x8ff) || index === Msr.APIC_BASE) {
      if (cpu.apic !== undefined) return cpu.apic.readMsr(index, out);
      if (index !== Msr.APIC_BASE) return false;
      out[0] = this.apicBaseLow;
      out[1] = 0;
      return true;
    }
    if ((isK7PerfMsr(index) && !this.isAmd()) || (index === Msr.PKRS && !this.offersPks())) return false;
    if (isMachineCheckMsr(index)) {
      if (!this.offersMachineCheck()) return false;
      if (index === Msr.MCG_CAP) {
        out[0] = MCG_CAP_VALUE;
        out[1] = 0;
        return true;
      }
    }
    switch (index) {
      case Msr.TSC: {
        const tsc = cpu.timeStampCounter();
        out[0] = tsc >>> 0;
        out[1] = Math.floor(tsc / TWO_32) >>> 0;
        return true;
      }
      case Msr.MTRR_CAP: out[0] = 0x508; out[1] = 0; return true;
      case KvmClockMsr.WALL_CLOCK: case KvmClockMsr.SYSTEM_TIME: case KvmClockMsr.WALL_CLOCK_NEW: case KvmClockMsr.SYSTEM_TIME_NEW:
        if (!cpu.kvmClock.offers(index)) return false;
        out[0] = this.lowOf(index);
        out[1] = this.highOf(index);
        return true;
      case Msr.EFER: out[0] = cpu.efer; out[1] = 0; return true;
      case Msr.FS_BASE: case Msr.GS_BASE: {
        const base = cpu.segmentBase[index === Msr.FS_BASE ? Seg.FS : Seg.GS]!;
        out[0] = base >>> 0;
        out[1] = Math.floor(base / TWO_32) >>> 0;
        return true;
      }
      default:
        if (!isStored(index)) return false;
        out[0] = this.lowOf(index);
        out[1] = this.highOf(index);
        return true;
    }
  }

  write(index: number, low: number, high: number): boolean {
    const cpu = this.cpu;
    index >>>= 0;
    if (needsCanonical(index) && (high << 16) >> 16 !== (high | 0)) return false;
    if (index === Msr.TSC_DEADLINE) return this.offersTscDeadline() && cpu.apic!.writeMsr(index, low, high);
    if ((index >= 0x800 && index <= 0x8ff) || index === Msr.APIC_BASE) {
      if (cpu.apic !== undefined) return cpu.apic.writeMsr(index, low, high);
      if (index !== Msr.APIC_BASE) return false;
      this.apicBaseLow = (low & 0xfffff900) | (cpu.bootstrap ? 0x100 : 0);
      return true;
    }
    if (isK7PerfMsr(index)) return this.writeK7Perf(index, low, high);
    if (isMachineCheckMsr(index)) return this.writeMachineCheck(index, low, high);
    if (index === Msr.PKRS) {
      // Bits 63:32 are reserved; translations cached under the old rights are stale.
      if (!this.offersPks() || high !== 0) return false;
      this.set(index, low, 0);
      cpu.flushTranslations();
      return true;
    }
    switch (index) {
      case Msr.TSC:
        cpu.timeStampOffset = (high >>> 0) * TWO_32 + (low >>> 0) - cpu.timeStampSourceNow();
        // kvmclock's tsc_timestamp is in guest TSC units: it must follow the new offset.
        cpu.kvmClock.publish();
        return true;
      case KvmClockMsr.WALL_CLOCK: case KvmClockMsr.SYSTEM_TIME: case KvmClockMsr.WALL_CLOCK_NEW: case KvmClockMsr.SYSTEM_TIME_NEW:
        if (!cpu.kvmClock.offers(index)) return false;
        cpu.kvmClock.write(index, low, high);
        return true;
      case Msr.MTRR_CAP: return false;
      case Msr.EFER: return this.writeEfer(low, high);
      case Msr.FS_BASE: case Msr.GS_BASE: {
        const seg = index === Msr.FS_BASE ? Seg.FS : Seg.GS;
        cpu.segmentBase[seg] = (high | 0) * TWO_32 + (low >>> 0);
        cpu.refreshSegmentAccess(seg);
        return true;
      }
      case Msr.PAT:
        // Each byte must be a valid memory type (0, 1, 4, 5, 6, 7).
        for (let i = 0; i < 8; i++) {
          const type = ((i < 4 ? low : high) >>> (8 * (i % 4))) & 0xff;
          if (type === 2 || type === 3 || type > 7) return false;
        }
        this.set(index, low, high);
        return true;
      case Msr.MTRR_DEF_TYPE:
        // Type in bits 7:0, FE bit 10, E bit 11; everything else reserved.
        if (high !== 0 || (low & ~0xcff) !== 0 || !isMtrrType(low & 0xff)) return false;
        this.set(index, low, high);
        return true;
      default:
        if (isFixedRangeMtrr(index)) {
          for (let i = 0; i < 4; i++) if (!isMtrrType((low >>> (8 * i)) & 0xff) || !isMtrrType((high >>> (8 * i)) & 0xff)) return false;
        } else if (index >= 0x200 && index <= 0x20f && !this.validVariableMtrr(index, low, high)) return false;
        if (!isStored(index)) return false;
        this.set(index, low, high);
        return true;
    }
  }

  /** PHYSBASE: type in 7:0, bits 11:8 reserved; PHYSMASK: bits 10:0 reserved (11 is V). Both: no bits at or above MAXPHYADDR. */
  private validVariableMtrr(index: number, low: number, high: number): boolean {
    const highBits = this.cpu.model.physicalAddressBits - 32;
    if (highBits < 32 && (high >>> highBits) !== 0) return false;
    return (index & 1) === 0 ? (low & 0xf00) === 0 && isMtrrType(low & 0xff) : (low & 0x7ff) === 0;
  }

  /**
   * The legacy performance MSRs of an AMD model: the event selects keep what
   * is written (reserved bits raise #GP), the counters their low 48 bits. No
   * events are modelled, so an enabled counter counts nothing; software that
   * only programs, reads back and clears them (Linux's PMU probe,
   * kvm-unit-tests' start-up) sees what hardware shows it.
   */
  private writeK7Perf(index: number, low: number, high: number): boolean {
    if (!this.isAmd()) return false;
    if (index < Msr.K7_PERFCTR0) {
      if ((low & K7_EVNTSEL_RESERVED_LOW) !== 0 || (high & K7_EVNTSEL_RESERVED_HIGH) !== 0) return false;
      this.set(index, low, high);
    } else this.set(index, low, high & K7_PERFCTR_HIGH_MASK);
    return true;
  }

  /** The TSC-deadline MSR needs a local APIC and the model's CPUID bit. */
  private offersTscDeadline(): boolean {
    return this.cpu.apic !== undefined && (this.cpu.model.leaf1Ecx & CPUID_TSC_DEADLINE) !== 0;
  }

  /**
   * MCG_CAP is read-only; MCG_CTL and each MCi_CTL take all-zeros or all-ones
   * (an MCi_CTL also all-ones but bit 10, which Linux clears on AMD K8s);
   * MCi_STATUS only 0 (clearing it); MCG_STATUS, MCi_ADDR and MCi_MISC any
   * value. The rules KVM applies, which the SDM leaves to the model.
   */
  private writeMachineCheck(index: number, low: number, high: number): boolean {
    if (!this.offersMachineCheck() || index === Msr.MCG_CAP) return false;
    const allOnes = (low & high) === -1;
    const zero = (low | high) === 0;
    if (index === Msr.MCG_CTL && !zero && !allOnes) return false;
    if (index >= Msr.MC0_CTL) {
      const register = (index - Msr.MC0_CTL) & 3;
      if (register === 0 && !zero && ((low | (1 << 10)) & high) !== -1) return false;
      if (register === 1 && !zero) return false;
    }
    this.set(index, low, high);
    return true;
  }

  private offersMachineCheck(): boolean {
    const model = this.cpu.model;
    const family = (model.signature >>> 8) & 0xf;
    return (model.leaf1Edx & CPUID_MCE_MCA) === CPUID_MCE_MCA && family >= 6;
  }

  private offersPks(): boolean {
    return ((this.cpu.model.leaf7Ecx ?? 0) & CPUID_PKS) !== 0;
  }

  private isAmd(): boolean {
    return this.cpu.model.vendor === 'AuthenticAMD';
  }

  private writeEfer(low: number, high: number): boolean {
    const cpu = this.cpu;
    const allowed = Efer.SCE | Efer.LME | Efer.NXE | Efer.LMA;
    if (high !== 0 || (low & ~allowed) !== 0) return false;
    // LME cannot change while paging is on.
    if ((cpu.cr0 & Cr0.PG) !== 0 && ((low ^ cpu.efer) & Efer.LME) !== 0) return false;
    // LMA is read-only: it follows LME and CR0.PG.
    cpu.efer = (low & ~Efer.LMA) | (cpu.efer & Efer.LMA);
    cpu.flushTranslations();
    cpu.updateMode();
    return true;
  }
}
