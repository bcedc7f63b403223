import type { CpuCore as Cpu } from '../cpu-core.js';
import { CodeMode, type Instruction } from '../decoder/instruction.js';
import { Msr } from '../msr/msr-file.js';
import { Cr0, Efer, Flag, Reg, Seg, SegAttr, Vector } from '../state/registers.js';
import { requirePrivilege0 } from './system.js';

const TWO_32 = 4294967296;
const CODE_ATTRIBUTES = SegAttr.P | SegAttr.S | SegAttr.CODE | SegAttr.READABLE | SegAttr.ACCESSED | SegAttr.G;
const DATA_ATTRIBUTES = SegAttr.P | SegAttr.S | SegAttr.WRITABLE | SegAttr.ACCESSED | SegAttr.G | SegAttr.DB;

/** Flat code segment with privilege `dpl`, 64-bit (`long`) or 32-bit. */
function flatCode(cpu: Cpu, selector: number, dpl: number, long: boolean): void {
  cpu.setSegmentCache(Seg.CS, selector, 0, 0xffffffff, CODE_ATTRIBUTES | (dpl << SegAttr.DPL_SHIFT) | (long ? SegAttr.L : SegAttr.DB));
}

function flatStack(cpu: Cpu, selector: number, dpl: number): void {
  cpu.setSegmentCache(Seg.SS, selector, 0, 0xffffffff, DATA_ATTRIBUTES | (dpl << SegAttr.DPL_SHIFT));
}

export function syscall(cpu: Cpu, _instruction: Instruction): void {
  if ((cpu.efer & Efer.SCE) === 0 || (cpu.cr0 & Cr0.PE) === 0) cpu.fault(Vector.UD);
  const star = cpu.msrs.highOf(Msr.STAR);
  const selector = star & 0xfffc;
  const flags = cpu.getFlags();
  if (cpu.isLongMode()) {
    const fromLong = cpu.codeMode === CodeMode.Bits64;
    cpu.setRegisterNumber(Reg.RCX, cpu.rip);
    cpu.writeRegister(Reg.R11, 8, flags & ~Flag.RF, 0);
    cpu.cpl = 0;
    flatCode(cpu, selector, 0, true);
    flatStack(cpu, (selector + 8) & 0xffff, 0);
    cpu.rip = cpu.msrs.numberOf(fromLong ? Msr.LSTAR : Msr.CSTAR);
    cpu.flags.setAll((flags & ~cpu.msrs.lowOf(Msr.FMASK) & ~Flag.RF) | 2);
  } else {
    cpu.writeRegister(Reg.RCX, 4, cpu.rip, 0);
    cpu.cpl = 0;
    flatCode(cpu, selector, 0, false);
    flatStack(cpu, (selector + 8) & 0xffff, 0);
    cpu.rip = cpu.msrs.lowOf(Msr.STAR) >>> 0;
    cpu.flags.setAll(flags & ~(Flag.VM | Flag.IF | Flag.RF));
  }
  cpu.refreshAllSegments();
  cpu.singleStepOnFinalFlags();
}

export function sysret(cpu: Cpu, instruction: Instruction): void {
  if ((cpu.efer & Efer.SCE) === 0 || (cpu.cr0 & Cr0.PE) === 0) cpu.fault(Vector.UD);
  requirePrivilege0(cpu);
  const base = (cpu.msrs.highOf(Msr.STAR) >>> 16) & 0xffff;
  if (cpu.isLongMode()) {
    const to64 = instruction.operandSize === 8;
    let rip: number;
    if (to64) {
      rip = cpu.registerNumber(Reg.RCX);
      if (rip < -0x800000000000 || rip >= 0x800000000000) cpu.fault(Vector.GP, 0);
    } else rip = cpu.low[Reg.RCX]! >>> 0;
    const flags = cpu.low[Reg.R11]!;
    cpu.cpl = 3;
    flatCode(cpu, ((to64 ? base + 16 : base) & 0xfffc) | 3, 3, to64);
    flatStack(cpu, ((base + 8) & 0xfffc) | 3, 3);
    cpu.rip = rip;
    cpu.setFlags((flags & 0x3c7fd7) | 2);
  } else {
    cpu.cpl = 3;
    flatCode(cpu, (base & 0xfffc) | 3, 3, false);
    flatStack(cpu, ((base + 8) & 0xfffc) | 3, 3);
    cpu.rip = cpu.low[Reg.RCX]! >>> 0;
    cpu.flags.materialize();
    cpu.flags.bits |= Flag.IF;
  }
  cpu.refreshAllSegments();
  cpu.attention = true;
  cpu.singleStepOnFinalFlags();
}

export function sysenter(cpu: Cpu, _instruction: Instruction): void {
  const selector = cpu.msrs.lowOf(Msr.SYSENTER_CS) & 0xfffc;
  if ((cpu.cr0 & Cr0.PE) === 0 || selector === 0) cpu.fault(Vector.GP, 0);
  const long = cpu.isLongMode();
  cpu.flags.materialize();
  cpu.flags.bits &= ~(Flag.VM | Flag.IF | Flag.RF);
  cpu.cpl = 0;
  flatCode(cpu, selector, 0, long);
  flatStack(cpu, (selector + 8) & 0xffff, 0);
  if (long) {
    cpu.rip = cpu.msrs.numberOf(Msr.SYSENTER_EIP);
    cpu.setRegisterNumber(Reg.RSP, cpu.msrs.numberOf(Msr.SYSENTER_ESP));
  } else {
    cpu.rip = cpu.msrs.lowOf(Msr.SYSENTER_EIP) >>> 0;
    cpu.writeRegister(Reg.RSP, 4, cpu.msrs.lowOf(Msr.SYSENTER_ESP), 0);
  }
  cpu.refreshAllSegments();
}

export function sysexit(cpu: Cpu, instruction: Instruction): void {
  const selector = cpu.msrs.lowOf(Msr.SYSENTER_CS) & 0xfffc;
  if ((cpu.cr0 & Cr0.PE) === 0 || selector === 0) cpu.fault(Vector.GP, 0);
  requirePrivilege0(cpu);
  const to64 = instruction.operandSize === 8;
  cpu.cpl = 3;
  flatCode(cpu, ((selector + (to64 ? 32 : 16)) & 0xfffc) | 3, 3, to64);
  flatStack(cpu, ((selector + (to64 ? 40 : 24)) & 0xfffc) | 3, 3);
  if (to64) {
    const rip = cpu.registerNumber(Reg.RDX);
    if (rip < -0x800000000000 || rip >= 0x800000000000) cpu.fault(Vector.GP, 0);
    cpu.rip = rip;
    cpu.writeRegister(Reg.RSP, 8, cpu.low[Reg.RCX]!, cpu.high[Reg.RCX]!);
  } else {
    cpu.rip = cpu.low[Reg.RDX]! >>> 0;
    cpu.writeRegister(Reg.RSP, 4, cpu.low[Reg.RCX]!, 0);
  }
  cpu.refreshAllSegments();
}

export function swapgs(cpu: Cpu, _instruction: Instruction): void {
  requirePrivilege0(cpu);
  const kernel = cpu.msrs.numberOf(Msr.KERNEL_GS_BASE);
  const current = cpu.segmentBase[Seg.GS]!;
  cpu.segmentBase[Seg.GS] = kernel;
  cpu.refreshSegmentAccess(Seg.GS);
  cpu.msrs.set(Msr.KERNEL_GS_BASE, current | 0, Math.floor(current / TWO_32) | 0);
}
