import type { CpuCore as Cpu } from '../cpu-core.js';
import { CodeMode, type Instruction, OperandKind } from '../decoder/instruction.js';
import { Cr0, Cr4, Efer, Flag, Reg, SegAttr, Vector } from '../state/registers.js';
import { attributesOf, baseOf, isRealOrVirtual8086, limitOf, readDescriptor, systemBase64 } from '../system/segmentation.js';
import { cpuidLeaf } from '../cpuid/cpuid.js';
import { memoryLinear, readValue } from './operands.js';

const TWO_32 = 4294967296;

/** #GP(0) unless at privilege 0 (real mode counts as 0). */
export function requirePrivilege0(cpu: Cpu): void {
  if (cpu.cpl !== 0 || (cpu.flags.bits & Flag.VM) !== 0) cpu.fault(Vector.GP, 0);
}

/** UMIP (CR4.UMIP): SGDT, SIDT, SLDT, SMSW and STR raise #GP(0) outside ring 0 (virtual-8086 mode is ring 3). */
function requireUmipPermission(cpu: Cpu): void {
  if ((cpu.cr4 & Cr4.UMIP) !== 0 && (cpu.cpl !== 0 || (cpu.flags.bits & Flag.VM) !== 0)) cpu.fault(Vector.GP, 0);
}

/** Leaf 7 ECX bit 2: the model offers UMIP, so CR4.UMIP may be set. */
const CPUID_UMIP = 1 << 2;
/** Leaf 7 EBX bits 7 and 20: SMEP and SMAP, which CR4.SMEP and CR4.SMAP need. */
const CPUID_SMEP = 1 << 7;
/** Leaf 1 EDX bit 7: machine-check exceptions, which CR4.MCE enables. */
const CPUID_MCE = 1 << 7;
const CPUID_SMAP = 1 << 20;
/** Leaf 7 ECX bits 3 and 31: protection keys for user pages (CR4.PKE) and supervisor pages (CR4.PKS). */
const CPUID_PKU = 1 << 3;
const CPUID_PKS = 1 << 31;

/** A 64-bit descriptor's base must be canonical (48-bit linear addresses): LLDT and LTR raise #GP(selector) otherwise. */
function isCanonical(base: number): boolean {
  return base >= -0x8000_0000_0000 && base < 0x8000_0000_0000;
}

function requireProtected(cpu: Cpu): void {
  if (isRealOrVirtual8086(cpu)) cpu.fault(Vector.UD);
}

export function hlt(cpu: Cpu, _instruction: Instruction): void {
  requirePrivilege0(cpu);
  cpu.halted = true;
  cpu.attention = true;
}

export function nop(_cpu: Cpu, _instruction: Instruction): void {}

export function ud(cpu: Cpu, _instruction: Instruction): void {
  cpu.fault(Vector.UD);
}

export function tooLong(cpu: Cpu, _instruction: Instruction): void {
  cpu.fault(Vector.GP, 0);
}

export function privilegedNop(cpu: Cpu, _instruction: Instruction): void {
  requirePrivilege0(cpu);
}

/** x87 encodings not implemented (transcendentals, undocumented aliases): #NM when CR0 asks for it, else #UD. */
export function fpuEscape(cpu: Cpu, _instruction: Instruction): void {
  if ((cpu.cr0 & (Cr0.EM | Cr0.TS)) !== 0) cpu.fault(Vector.NM);
  cpu.fault(Vector.UD);
}

/** CMC, CLC, STC, CLI, STI, CLD, STD (`sub` 0–6). */
export function flagOp(cpu: Cpu, instruction: Instruction): void {
  const flags = cpu.flags;
  flags.materialize();
  switch (instruction.sub) {
    case 0: flags.bits ^= Flag.CF; return;
    case 1: flags.bits &= ~Flag.CF; return;
    case 2: flags.bits |= Flag.CF; return;
    case 3:
      checkInterruptFlagPrivilege(cpu);
      flags.bits &= ~Flag.IF;
      return;
    case 4:
      checkInterruptFlagPrivilege(cpu);
      if ((flags.bits & Flag.IF) === 0) {
        // STI shadow: interrupts stay off until the next instruction has run.
        cpu.inhibitUntil = cpu.instructionCount + 2;
        flags.bits |= Flag.IF;
      }
      cpu.attention = true;
      return;
    case 5: flags.bits &= ~Flag.DF; return;
    default: flags.bits |= Flag.DF; return;
  }
}

/** CLAC, STAC (`sub` 0–1): EFLAGS.AC, which lets ring 0 reach user pages under SMAP; #UD outside ring 0. */
export function accessFlag(cpu: Cpu, instruction: Instruction): void {
  if (cpu.cpl !== 0 || (cpu.flags.bits & Flag.VM) !== 0) cpu.fault(Vector.UD);
  cpu.flags.materialize();
  if (instruction.sub === 0) cpu.flags.bits &= ~Flag.AC;
  else cpu.flags.bits |= Flag.AC;
}

/** RDPKRU, WRPKRU (`sub` 0–1): #UD unless CR4.PKE; ECX (and for WRPKRU, EDX) must be 0. */
export function protectionKeyRights(cpu: Cpu, instruction: Instruction): void {
  if ((cpu.cr4 & Cr4.PKE) === 0) cpu.fault(Vector.UD);
  if (cpu.low[Reg.RCX] !== 0) cpu.fault(Vector.GP, 0);
  if (instruction.sub === 0) {
    cpu.writeRegister(Reg.RAX, 4, cpu.pkru, 0);
    cpu.writeRegister(Reg.RDX, 4, 0, 0);
    return;
  }
  if (cpu.low[Reg.RDX] !== 0) cpu.fault(Vector.GP, 0);
  cpu.pkru = cpu.low[Reg.RAX]! | 0;
  // Translations cached under the old rights are stale.
  cpu.flushTranslations();
}

function checkInterruptFlagPrivilege(cpu: Cpu): void {
  if ((cpu.cr0 & Cr0.PE) !== 0 && cpu.cpl > ((cpu.flags.bits >> 12) & 3)) cpu.fault(Vector.GP, 0);
}

export function cpuid(cpu: Cpu, _instruction: Instruction): void {
  cpuidLeaf(cpu.model, cpu.low[Reg.RAX]! >>> 0, cpu.low[Reg.RCX]! >>> 0, cpu.wide);
  // Leaf 1 ECX.OSXSAVE (27) mirrors CR4.OSXSAVE.
  if (cpu.low[Reg.RAX] === 1 && (cpu.cr4 & Cr4.OSXSAVE) !== 0) cpu.wide[2] = cpu.wide[2]! | (1 << 27);
  // Leaf 7 ECX.OSPKE (4) mirrors CR4.PKE.
  if (cpu.low[Reg.RAX] === 7 && cpu.low[Reg.RCX] === 0 && (cpu.cr4 & Cr4.PKE) !== 0) cpu.wide[2] = cpu.wide[2]! | (1 << 4);
  cpu.writeRegister(Reg.RAX, 4, cpu.wide[0]!, 0);
  cpu.writeRegister(Reg.RBX, 4, cpu.wide[1]!, 0);
  cpu.writeRegister(Reg.RCX, 4, cpu.wide[2]!, 0);
  cpu.writeRegister(Reg.RDX, 4, cpu.wide[3]!, 0);
}

function writeTimeStamp(cpu: Cpu): void {
  if ((cpu.cr4 & Cr4.TSD) !== 0 && cpu.cpl !== 0 && (cpu.cr0 & Cr0.PE) !== 0) cpu.fault(Vector.GP, 0);
  const tsc = cpu.timeStampCounter();
  cpu.writeRegister(Reg.RAX, 4, tsc | 0, 0);
  cpu.writeRegister(Reg.RDX, 4, Math.floor(tsc / TWO_32) | 0, 0);
}

export function rdtsc(cpu: Cpu, _instruction: Instruction): void {
  writeTimeStamp(cpu);
}

export function rdtscp(cpu: Cpu, _instruction: Instruction): void {
  writeTimeStamp(cpu);
  cpu.writeRegister(Reg.RCX, 4, cpu.msrs.lowOf(0xc0000103), 0);
}

export function rdmsr(cpu: Cpu, _instruction: Instruction): void {
  requirePrivilege0(cpu);
  if (!cpu.msrs.read(cpu.low[Reg.RCX]!)) cpu.fault(Vector.GP, 0);
  cpu.writeRegister(Reg.RAX, 4, cpu.msrValue[0]! | 0, 0);
  cpu.writeRegister(Reg.RDX, 4, cpu.msrValue[1]! | 0, 0);
}

export function wrmsr(cpu: Cpu, _instruction: Instruction): void {
  requirePrivilege0(cpu);
  if (!cpu.msrs.write(cpu.low[Reg.RCX]!, cpu.low[Reg.RAX]!, cpu.low[Reg.RDX]!)) cpu.fault(Vector.GP, 0);
}

export function rdpmc(cpu: Cpu, _instruction: Instruction): void {
  // No performance counters are advertised.
  cpu.fault(Vector.GP, 0);
}

/** SGDT, SIDT, LGDT, LIDT (`sub` 0–3). */
export function descriptorTable(cpu: Cpu, instruction: Instruction): void {
  const long = cpu.codeMode === CodeMode.Bits64;
  const baseSize = long ? 8 : 4;
  const linear = memoryLinear(cpu, instruction, 2 + baseSize, instruction.sub < 2);
  const global = (instruction.sub & 1) === 0;
  if (instruction.sub < 2) {
    requireUmipPermission(cpu);
    const base = global ? cpu.gdtBase : cpu.idtBase;
    const limit = global ? cpu.gdtLimit : cpu.idtLimit;
    cpu.mmu.probeWrite(linear, 2 + baseSize);
    cpu.writeLinear(linear, 2, limit, 0);
    cpu.writeLinear(linear + 2, baseSize, base | 0, Math.floor(base / TWO_32) | 0);
    return;
  }
  requirePrivilege0(cpu);
  const limit = cpu.readLinear(linear, 2);
  let base = cpu.readLinear(linear + 2, baseSize);
  if (long) {
    base = cpu.valueHigh * TWO_32 + (base >>> 0);
    if (!isCanonical(base)) cpu.fault(Vector.GP, 0);
  } else {
    base >>>= 0;
    if (instruction.operandSize === 2) base &= 0xffffff;
  }
  if (global) {
    cpu.gdtBase = base;
    cpu.gdtLimit = limit;
  } else {
    cpu.idtBase = base;
    cpu.idtLimit = limit;
  }
}

function readSelectorOperand(cpu: Cpu, instruction: Instruction): number {
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, 2, false) : 0;
  return readValue(cpu, instruction, instruction.kind0, instruction.register0, 2, linear) & 0xffff;
}

function storeSelector(cpu: Cpu, instruction: Instruction, value: number): void {
  if (instruction.kind0 === OperandKind.Register) cpu.writeRegister(instruction.register0, instruction.operandSize, value, 0);
  else cpu.writeLinear(memoryLinear(cpu, instruction, 2, true), 2, value, 0);
}

export function sldt(cpu: Cpu, instruction: Instruction): void {
  requireProtected(cpu);
  requireUmipPermission(cpu);
  storeSelector(cpu, instruction, cpu.ldtSelector);
}

export function str(cpu: Cpu, instruction: Instruction): void {
  requireProtected(cpu);
  requireUmipPermission(cpu);
  storeSelector(cpu, instruction, cpu.trSelector);
}

export function lldt(cpu: Cpu, instruction: Instruction): void {
  requireProtected(cpu);
  requirePrivilege0(cpu);
  const selector = readSelectorOperand(cpu, instruction);
  if ((selector & 0xfffc) === 0) {
    cpu.ldtSelector = selector;
    cpu.ldtBase = 0;
    cpu.ldtLimit = 0;
    return;
  }
  const slot = cpu.descriptorScratch;
  if ((selector & 4) !== 0 || !readDescriptor(cpu, selector, slot)) cpu.fault(Vector.GP, selector & 0xfffc);
  const attributes = attributesOf(slot.high);
  if ((attributes & 0x1f) !== 0x02) cpu.fault(Vector.GP, selector & 0xfffc);
  if ((attributes & SegAttr.P) === 0) cpu.fault(Vector.NP, selector & 0xfffc);
  const base = cpu.isLongMode() ? systemBase64(cpu, slot) : baseOf(slot.low, slot.high);
  if (!isCanonical(base)) cpu.fault(Vector.GP, selector & 0xfffc);
  cpu.ldtSelector = selector;
  cpu.ldtBase = base;
  cpu.ldtLimit = limitOf(slot.low, slot.high);
}

export function ltr(cpu: Cpu, instruction: Instruction): void {
  requireProtected(cpu);
  requirePrivilege0(cpu);
  const selector = readSelectorOperand(cpu, instruction);
  if ((selector & 0xfffc) === 0) cpu.fault(Vector.GP, 0);
  const slot = cpu.descriptorScratch;
  if ((selector & 4) !== 0 || !readDescriptor(cpu, selector, slot)) cpu.fault(Vector.GP, selector & 0xfffc);
  const attributes = attributesOf(slot.high);
  const type = attributes & 0x1f;
  // An available TSS: 16-bit (1) outside long mode, 32/64-bit (9).
  if (type !== 0x09 && !(type === 0x01 && !cpu.isLongMode())) cpu.fault(Vector.GP, selector & 0xfffc);
  if ((attributes & SegAttr.P) === 0) cpu.fault(Vector.NP, selector & 0xfffc);
  const base = cpu.isLongMode() ? systemBase64(cpu, slot) : baseOf(slot.low, slot.high);
  if (!isCanonical(base)) cpu.fault(Vector.GP, selector & 0xfffc);
  // Mark it busy.
  slot.high |= 0x200;
  cpu.supervisorWrite(slot.address + 4, 4, slot.high);
  cpu.trSelector = selector;
  cpu.trBase = base;
  cpu.trLimit = limitOf(slot.low, slot.high);
  cpu.trAttributes = attributesOf(slot.high);
}

export function lmsw(cpu: Cpu, instruction: Instruction): void {
  requirePrivilege0(cpu);
  const value = readSelectorOperand(cpu, instruction);
  // LMSW sets PE but cannot clear it.
  const updated = (cpu.cr0 & ~0xe) | (value & 0xf) | (cpu.cr0 & Cr0.PE);
  writeCr0(cpu, updated);
}

export function smsw(cpu: Cpu, instruction: Instruction): void {
  requireUmipPermission(cpu);
  if (instruction.kind0 === OperandKind.Register) cpu.writeRegister(instruction.register0, instruction.operandSize, cpu.cr0, 0);
  else cpu.writeLinear(memoryLinear(cpu, instruction, 2, true), 2, cpu.cr0 & 0xffff, 0);
}

export function invlpg(cpu: Cpu, _instruction: Instruction): void {
  requirePrivilege0(cpu);
  // Large pages fill several TLB slots; dropping everything keeps INVLPG exact for them.
  cpu.flushTranslations();
}

export function clts(cpu: Cpu, _instruction: Instruction): void {
  requirePrivilege0(cpu);
  cpu.cr0 &= ~Cr0.TS;
}

const CR4_ALLOWED = Cr4.TSD | Cr4.DE | Cr4.PSE | Cr4.PAE | Cr4.MCE | Cr4.PGE | Cr4.PCE | Cr4.OSFXSR | Cr4.OSXMMEXCPT | Cr4.UMIP | Cr4.OSXSAVE | Cr4.SMEP | Cr4.SMAP | Cr4.PKE | Cr4.PKS;

/** MOV to CR0 with its consistency checks and the long-mode activation rules. */
export function writeCr0(cpu: Cpu, value: number): void {
  value = (value | Cr0.ET) | 0;
  if ((value & Cr0.PG) !== 0 && (value & Cr0.PE) === 0) cpu.fault(Vector.GP, 0);
  if ((value & Cr0.NW) !== 0 && (value & Cr0.CD) === 0) cpu.fault(Vector.GP, 0);
  const enablingPaging = (value & Cr0.PG) !== 0 && (cpu.cr0 & Cr0.PG) === 0;
  const disablingPaging = (value & Cr0.PG) === 0 && (cpu.cr0 & Cr0.PG) !== 0;
  if (enablingPaging && (cpu.efer & Efer.LME) !== 0) {
    if ((cpu.cr4 & Cr4.PAE) === 0 || (cpu.segmentAttributes[1]! & SegAttr.L) !== 0) cpu.fault(Vector.GP, 0);
    cpu.efer |= Efer.LMA;
  }
  if (disablingPaging && cpu.isLongMode()) {
    if (cpu.codeMode === CodeMode.Bits64) cpu.fault(Vector.GP, 0);
    cpu.efer &= ~Efer.LMA;
  }
  const changed = cpu.cr0 ^ value;
  cpu.cr0 = value;
  if ((changed & (Cr0.PG | Cr0.WP | Cr0.PE)) !== 0) cpu.flushTranslations();
  if ((changed & (Cr0.PE | Cr0.PG)) !== 0) cpu.refreshAllSegments();
}

export function movFromCr(cpu: Cpu, instruction: Instruction): void {
  requirePrivilege0(cpu);
  const register = instruction.rmField;
  const size = instruction.operandSize;
  switch (instruction.regField) {
    case 0: cpu.writeRegister(register, size, cpu.cr0, 0); return;
    case 2: cpu.writeRegister(register, size, cpu.cr2 | 0, Math.floor(cpu.cr2 / TWO_32) | 0); return;
    case 3: cpu.writeRegister(register, size, cpu.cr3, cpu.cr3High); return;
    case 4: cpu.writeRegister(register, size, cpu.cr4, 0); return;
    case 8: cpu.writeRegister(register, size, cpu.cr8, 0); return;
    default: cpu.fault(Vector.UD);
  }
}

export function movToCr(cpu: Cpu, instruction: Instruction): void {
  requirePrivilege0(cpu);
  const register = instruction.rmField;
  const low = cpu.low[register]!;
  const high = instruction.operandSize === 8 ? cpu.high[register]! : 0;
  switch (instruction.regField) {
    case 0:
      if (high !== 0) cpu.fault(Vector.GP, 0);
      writeCr0(cpu, low);
      return;
    case 2:
      cpu.cr2 = high * TWO_32 + (low >>> 0);
      return;
    case 3:
      if ((high & 0xfff00000) !== 0) cpu.fault(Vector.GP, 0);
      cpu.cr3 = low;
      cpu.cr3High = high;
      cpu.flushTranslations();
      return;
    case 4: {
      if (high !== 0 || (low & ~CR4_ALLOWED) !== 0) cpu.fault(Vector.GP, 0);
      if ((low & Cr4.UMIP) !== 0 && ((cpu.model.leaf7Ecx ?? 0) & CPUID_UMIP) === 0) cpu.fault(Vector.GP, 0);
      if ((low & Cr4.SMEP) !== 0 && (cpu.model.leaf7Ebx & CPUID_SMEP) === 0) cpu.fault(Vector.GP, 0);
      if ((low & Cr4.MCE) !== 0 && (cpu.model.leaf1Edx & CPUID_MCE) === 0) cpu.fault(Vector.GP, 0);
      if ((low & Cr4.SMAP) !== 0 && (cpu.model.leaf7Ebx & CPUID_SMAP) === 0) cpu.fault(Vector.GP, 0);
      if ((low & Cr4.PKE) !== 0 && ((cpu.model.leaf7Ecx ?? 0) & CPUID_PKU) === 0) cpu.fault(Vector.GP, 0);
      if ((low & Cr4.PKS) !== 0 && ((cpu.model.leaf7Ecx ?? 0) & CPUID_PKS) === 0) cpu.fault(Vector.GP, 0);
      // OSXSAVE is settable only where CPUID advertises XSAVE.
      if ((low & Cr4.OSXSAVE) !== 0 && !cpu.model.features.has('xsave')) cpu.fault(Vector.GP, 0);
      if (cpu.isLongMode() && (low & Cr4.PAE) === 0) cpu.fault(Vector.GP, 0);
      const changed = cpu.cr4 ^ low;
      cpu.cr4 = low;
      if ((changed & (Cr4.PAE | Cr4.PSE | Cr4.PGE | Cr4.SMEP | Cr4.SMAP | Cr4.PKE | Cr4.PKS)) !== 0) cpu.flushTranslations();
      if ((changed & Cr4.DE) !== 0) cpu.updateBreakpoints();
      return;
    }
    case 8:
      if (high !== 0 || (low & ~0xf) !== 0) cpu.fault(Vector.GP, 0);
      cpu.setCr8(low);
      return;
    default:
      cpu.fault(Vector.UD);
  }
}

function debugIndex(cpu: Cpu, index: number): number {
  if (index === 4 || index === 5) {
    if ((cpu.cr4 & Cr4.DE) !== 0) cpu.fault(Vector.UD);
    return index + 2;
  }
  if (index > 7) cpu.fault(Vector.UD);
  return index;
}

/** DR7.GD: any MOV to or from a debug register raises #DB (DR6.BD) first. */
function checkGeneralDetect(cpu: Cpu): void {
  if ((cpu.debug[7]! & 0x2000) !== 0) cpu.debugFault(0x2000);
}

export function movFromDr(cpu: Cpu, instruction: Instruction): void {
  requirePrivilege0(cpu);
  const index = debugIndex(cpu, instruction.regField);
  checkGeneralDetect(cpu);
  const value = cpu.debug[index]!;
  cpu.writeRegister(instruction.rmField, instruction.operandSize, value | 0, Math.floor(value / TWO_32) | 0);
}

export function movToDr(cpu: Cpu, instruction: Instruction): void {
  requirePrivilege0(cpu);
  const index = debugIndex(cpu, instruction.regField);
  checkGeneralDetect(cpu);
  const register = instruction.rmField;
  const high = instruction.operandSize === 8 ? cpu.high[register]! : 0;
  let value = high * TWO_32 + (cpu.low[register]! >>> 0);
  if (index === 6) value = (value >>> 0) | 0xffff0ff0;
  else if (index === 7) value = (((value >>> 0) & ~0xd000) | 0x400) >>> 0;
  cpu.debug[index] = value;
  if (index === 7) cpu.updateBreakpoints();
}

/** Descriptor checks shared by LAR, LSL, VERR, VERW: returns the attributes, or -1 when ZF must be cleared. */
function inspect(cpu: Cpu, selector: number, system: (type: number) => boolean): number {
  if ((selector & 0xfffc) === 0) return -1;
  const slot = cpu.descriptorScratch;
  if (!readDescriptor(cpu, selector, slot)) return -1;
  const attributes = attributesOf(slot.high);
  const dpl = (attributes >> SegAttr.DPL_SHIFT) & 3;
  if ((attributes & SegAttr.S) === 0) {
    if (!system(attributes & 0xf)) return -1;
  } else if (!((attributes & SegAttr.CODE) !== 0 && (attributes & SegAttr.CONFORMING) !== 0)) {
    if (dpl < cpu.cpl || dpl < (selector & 3)) return -1;
  }
  return attributes;
}

function setZero(cpu: Cpu, zero: boolean): void {
  cpu.flags.materialize();
  cpu.flags.bits = (cpu.flags.bits & ~Flag.ZF) | (zero ? Flag.ZF : 0);
}

export function lar(cpu: Cpu, instruction: Instruction): void {
  requireProtected(cpu);
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, 2, false) : 0;
  const selector = readValue(cpu, instruction, instruction.kind1, instruction.register1, 2, linear) & 0xffff;
  const long = cpu.isLongMode();
  const attributes = inspect(cpu, selector, (type) => (long ? type === 2 || type === 9 || type === 0xb || type === 0xc : type !== 0 && type !== 8 && type !== 0xa && type !== 0xd && type !== 0xe && type !== 0xf));
  if (attributes < 0) return setZero(cpu, false);
  cpu.writeRegister(instruction.register0, instruction.operandSize, cpu.descriptorScratch.high & 0x00f0ff00, 0);
  setZero(cpu, true);
}

export function lsl(cpu: Cpu, instruction: Instruction): void {
  requireProtected(cpu);
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, 2, false) : 0;
  const selector = readValue(cpu, instruction, instruction.kind1, instruction.register1, 2, linear) & 0xffff;
  const long = cpu.isLongMode();
  const attributes = inspect(cpu, selector, (type) => (long ? type === 2 || type === 9 || type === 0xb : type === 1 || type === 2 || type === 3 || type === 9 || type === 0xb));
  if (attributes < 0) return setZero(cpu, false);
  const slot = cpu.descriptorScratch;
  cpu.writeRegister(instruction.register0, instruction.operandSize, limitOf(slot.low, slot.high) | 0, 0);
  setZero(cpu, true);
}

function verify(cpu: Cpu, instruction: Instruction, write: boolean): void {
  requireProtected(cpu);
  const selector = readSelectorOperand(cpu, instruction);
  const attributes = inspect(cpu, selector, () => false);
  if (attributes < 0 || (attributes & SegAttr.S) === 0) return setZero(cpu, false);
  const code = (attributes & SegAttr.CODE) !== 0;
  const ok = write ? !code && (attributes & SegAttr.WRITABLE) !== 0 : !code || (attributes & SegAttr.READABLE) !== 0;
  setZero(cpu, ok);
}

export function verr(cpu: Cpu, instruction: Instruction): void {
  verify(cpu, instruction, false);
}

export function verw(cpu: Cpu, instruction: Instruction): void {
  verify(cpu, instruction, true);
}

export function arpl(cpu: Cpu, instruction: Instruction): void {
  requireProtected(cpu);
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, 2, true) : 0;
  const destination = readValue(cpu, instruction, instruction.kind0, instruction.register0, 2, linear);
  const source = cpu.low[instruction.register1]! & 3;
  if ((destination & 3) < source) {
    const updated = (destination & ~3) | source;
    if (instruction.kind0 === OperandKind.Register) cpu.writeRegister(instruction.register0, 2, updated, 0);
    else cpu.writeLinear(linear, 2, updated, 0);
    setZero(cpu, true);
  } else setZero(cpu, false);
}
