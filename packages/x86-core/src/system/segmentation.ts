import type { CpuCore as Cpu } from '../cpu-core.js';
import { CodeMode } from '../decoder/instruction.js';
import { Cr0, Flag, Seg, SegAttr, Vector } from '../state/registers.js';

const TWO_32 = 4294967296;

/** A descriptor read from a table: its two dwords (and the table address it came from). */
export interface DescriptorSlot {
  low: number;
  high: number;
  /** Linear address of the descriptor (to set the accessed/busy bits). */
  address: number;
}

/** Segment attributes (access byte in 7:0, flags in 15:12) from a descriptor's high dword. */
export function attributesOf(high: number): number {
  return ((high >>> 8) & 0xff) | ((high >>> 8) & 0xf000);
}

export function baseOf(low: number, high: number): number {
  return ((low >>> 16) | ((high & 0xff) << 16) | (high & 0xff000000)) >>> 0;
}

export function limitOf(low: number, high: number): number {
  const raw = (low & 0xffff) | (high & 0xf0000);
  return (high & 0x800000) !== 0 ? raw * 4096 + 0xfff : raw;
}

export function isRealOrVirtual8086(cpu: Cpu): boolean {
  return (cpu.cr0 & Cr0.PE) === 0 || (cpu.flags.bits & Flag.VM) !== 0;
}

/**
 * Reads the descriptor for `selector` from the GDT or LDT into `slot`.
 * Returns false when the selector lies beyond the table's limit; the caller
 * raises the fault its instruction defines.
 */
export function readDescriptor(cpu: Cpu, selector: number, slot: DescriptorSlot): boolean {
  const index = selector & 0xfff8;
  const local = (selector & 4) !== 0;
  const tableBase = local ? cpu.ldtBase : cpu.gdtBase;
  const tableLimit = local ? cpu.ldtLimit : cpu.gdtLimit;
  if (local && (cpu.ldtSelector & 0xfffc) === 0) return false;
  if (index + 7 > tableLimit) return false;
  const address = cpu.codeMode === CodeMode.Bits64 || cpu.isLongMode() ? tableBase + index : (tableBase + index) >>> 0;
  slot.address = address;
  slot.low = cpu.supervisorRead(address, 4);
  slot.high = cpu.supervisorRead(address + 4, 4);
  return true;
}

/** Sets the accessed bit of a code/data descriptor if it is clear. */
export function markAccessed(cpu: Cpu, slot: DescriptorSlot): void {
  if ((slot.high & 0x100) === 0) {
    slot.high |= 0x100;
    cpu.supervisorWrite(slot.address + 4, 4, slot.high);
  }
}

/**
 * Loads data/stack segment register `seg` with `selector` as MOV, POP and
 * LDS/LES/LFS/LGS/LSS do, with the protected-mode checks (#GP, #SS, #NP).
 */
export function loadDataSegment(cpu: Cpu, seg: number, selector: number, slot: DescriptorSlot): void {
  selector &= 0xffff;
  if (isRealOrVirtual8086(cpu)) {
    const attributes = (cpu.flags.bits & Flag.VM) !== 0 ? SegAttr.P | SegAttr.S | SegAttr.WRITABLE | SegAttr.ACCESSED | (3 << SegAttr.DPL_SHIFT) : cpu.segmentAttributes[seg]! | SegAttr.P;
    cpu.setSegmentCache(seg, selector, selector << 4, (cpu.flags.bits & Flag.VM) !== 0 ? 0xffff : cpu.segmentLimit[seg]!, attributes);
    return;
  }
  const rpl = selector & 3;
  if ((selector & 0xfffc) === 0) {
    if (seg === Seg.SS && !(cpu.codeMode === CodeMode.Bits64 && cpu.cpl !== 3 && rpl === cpu.cpl)) cpu.fault(Vector.GP, 0);
    // A null selector: the register becomes unusable (any access faults) except in 64-bit mode.
    cpu.setSegmentCache(seg, selector, 0, 0, seg === Seg.SS ? (cpu.cpl << SegAttr.DPL_SHIFT) | SegAttr.DB : 0);
    return;
  }
  if (!readDescriptor(cpu, selector, slot)) cpu.fault(Vector.GP, selector & 0xfffc);
  const attributes = attributesOf(slot.high);
  const dpl = (attributes >> SegAttr.DPL_SHIFT) & 3;
  const code = (attributes & SegAttr.CODE) !== 0;
  if ((attributes & SegAttr.S) === 0) cpu.fault(Vector.GP, selector & 0xfffc);
  if (seg === Seg.SS) {
    if (rpl !== cpu.cpl || dpl !== cpu.cpl || code || (attributes & SegAttr.WRITABLE) === 0) cpu.fault(Vector.GP, selector & 0xfffc);
    if ((attributes & SegAttr.P) === 0) cpu.fault(Vector.SS, selector & 0xfffc);
  } else {
    if (code && (attributes & SegAttr.READABLE) === 0) cpu.fault(Vector.GP, selector & 0xfffc);
    const conforming = code && (attributes & SegAttr.CONFORMING) !== 0;
    if (!conforming && dpl < Math.max(cpu.cpl, rpl)) cpu.fault(Vector.GP, selector & 0xfffc);
    if ((attributes & SegAttr.P) === 0) cpu.fault(Vector.NP, selector & 0xfffc);
  }
  markAccessed(cpu, slot);
  cpu.setSegmentCache(seg, selector, baseOf(slot.low, slot.high), limitOf(slot.low, slot.high), attributesOf(slot.high));
}

/** Loads CS from a code descriptor already checked by the caller, at privilege `cpl`. */
export function loadCodeSegment(cpu: Cpu, selector: number, slot: DescriptorSlot, cpl: number): void {
  markAccessed(cpu, slot);
  cpu.cpl = cpl;
  cpu.setSegmentCache(Seg.CS, (selector & 0xfffc) | cpl, baseOf(slot.low, slot.high), limitOf(slot.low, slot.high), attributesOf(slot.high));
  // Data segments the new privilege may not use become null (on returns to an outer level).
}

/**
 * Checks a code-segment descriptor for a direct far JMP/CALL (no gates) and
 * returns the privilege it runs at. Raises #GP/#NP as the SDM says.
 */
export function checkFarCodeTarget(cpu: Cpu, selector: number, slot: DescriptorSlot): number {
  if ((selector & 0xfffc) === 0) cpu.fault(Vector.GP, 0);
  if (!readDescriptor(cpu, selector, slot)) cpu.fault(Vector.GP, selector & 0xfffc);
  const attributes = attributesOf(slot.high);
  if ((attributes & SegAttr.S) === 0 || (attributes & SegAttr.CODE) === 0) cpu.fault(Vector.GP, selector & 0xfffc);
  const dpl = (attributes >> SegAttr.DPL_SHIFT) & 3;
  const rpl = selector & 3;
  if ((attributes & SegAttr.CONFORMING) !== 0) {
    if (dpl > cpu.cpl) cpu.fault(Vector.GP, selector & 0xfffc);
  } else if (rpl > cpu.cpl || dpl !== cpu.cpl) {
    cpu.fault(Vector.GP, selector & 0xfffc);
  }
  if ((attributes & SegAttr.P) === 0) cpu.fault(Vector.NP, selector & 0xfffc);
  if (cpu.isLongMode() && (attributes & SegAttr.L) !== 0 && (attributes & SegAttr.DB) !== 0) cpu.fault(Vector.GP, selector & 0xfffc);
  return cpu.cpl;
}

/** After a return to an outer privilege level, data segments the new CPL may not use are nulled. */
export function nullInaccessibleSegments(cpu: Cpu): void {
  for (const seg of [Seg.ES, Seg.DS, Seg.FS, Seg.GS]) {
    const attributes = cpu.segmentAttributes[seg]!;
    const dpl = (attributes >> SegAttr.DPL_SHIFT) & 3;
    const conformingCode = (attributes & SegAttr.CODE) !== 0 && (attributes & SegAttr.CONFORMING) !== 0;
    if ((cpu.segmentSelector[seg]! & 0xfffc) !== 0 && !conformingCode && dpl < cpu.cpl) {
      cpu.setSegmentCache(seg, 0, seg >= Seg.FS && cpu.codeMode === CodeMode.Bits64 ? cpu.segmentBase[seg]! : 0, 0, 0);
    }
  }
}

/** Reads a 16-byte system descriptor's base (long mode): low 32 bits from the first qword, high from the third dword. */
export function systemBase64(cpu: Cpu, slot: DescriptorSlot): number {
  const upper = cpu.supervisorRead(slot.address + 8, 4);
  return (upper | 0) * TWO_32 + baseOf(slot.low, slot.high);
}
