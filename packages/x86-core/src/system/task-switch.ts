import type { CpuCore as Cpu } from '../cpu-core.js';
import { Cr0, Flag, Seg, SegAttr, Vector } from '../state/registers.js';
import { attributesOf, baseOf, limitOf, markAccessed, readDescriptor, type DescriptorSlot } from './segmentation.js';

/** What started a task switch (Intel SDM vol. 3, 7.3): it decides the busy bits, NT and the back link. */
export enum TaskSwitchReason { Jump = 0, Call = 1, Iret = 2, Interrupt = 3 }

/** TSS descriptor types (system descriptors, S = 0). */
const TSS16_AVAILABLE = 0x01;
const TSS16_BUSY = 0x03;
const TASK_GATE = 0x05;
const TSS32_AVAILABLE = 0x09;
const TSS32_BUSY = 0x0b;
const BUSY_BIT = 0x200;

/** DR7 L0–L3 and LE: the local breakpoint enables a task switch clears. */
const DR7_LOCAL_ENABLES = 0x155;

/** Segment registers in the order a task switch loads them (after LDTR). */
const LOAD_ORDER = [Seg.CS, Seg.SS, Seg.ES, Seg.DS, Seg.FS, Seg.GS] as const;
/** 32-bit TSS offsets of ES, CS, SS, DS, FS, GS (indexed by segment number). */
const SEGMENT_OFFSET_32 = [0x48, 0x4c, 0x50, 0x54, 0x58, 0x5c];
/** 16-bit TSS offsets of ES, CS, SS, DS (FS and GS have none). */
const SEGMENT_OFFSET_16 = [0x22, 0x24, 0x26, 0x28, -1, -1];

/** True for the descriptor types a far JMP/CALL may switch tasks through. */
export function isTaskDescriptor(type: number): boolean {
  return type === TSS16_AVAILABLE || type === TSS16_BUSY || type === TASK_GATE || type === TSS32_AVAILABLE || type === TSS32_BUSY;
}

/**
 * A far JMP or CALL whose selector names a TSS descriptor or a task gate
 * (`slot` holds that descriptor): the privilege and presence checks of the
 * instruction, then the task switch.
 */
export function farTaskTransfer(cpu: Cpu, selector: number, isCall: boolean, slot: DescriptorSlot): void {
  const type = (slot.high >> 8) & 0x1f;
  const dpl = (slot.high >> 13) & 3;
  if (dpl < cpu.cpl || dpl < (selector & 3)) cpu.fault(Vector.GP, selector & 0xfffc);
  if (type === TASK_GATE) {
    if ((slot.high & 0x8000) === 0) cpu.fault(Vector.NP, selector & 0xfffc);
    const target = slot.low >>> 16;
    readTaskGateTarget(cpu, target, slot, 0);
    switchTask(cpu, target, slot, isCall ? TaskSwitchReason.Call : TaskSwitchReason.Jump, 0);
    return;
  }
  if (type === TSS16_BUSY || type === TSS32_BUSY) cpu.fault(Vector.GP, selector & 0xfffc);
  if ((slot.high & 0x8000) === 0) cpu.fault(Vector.NP, selector & 0xfffc);
  switchTask(cpu, selector, slot, isCall ? TaskSwitchReason.Call : TaskSwitchReason.Jump, 0);
}

/**
 * Reads the TSS descriptor a task gate names into `slot`: it must be an
 * available TSS in the GDT (#GP otherwise) and present (#NP).
 */
export function readTaskGateTarget(cpu: Cpu, selector: number, slot: DescriptorSlot, ext: number): void {
  const code = (selector & 0xfffc) | ext;
  if ((selector & 4) !== 0 || (selector & 0xfffc) === 0 || !readDescriptor(cpu, selector, slot)) cpu.fault(Vector.GP, code);
  const type = (slot.high >> 8) & 0x1f;
  if (type !== TSS16_AVAILABLE && type !== TSS32_AVAILABLE) cpu.fault(Vector.GP, code);
  if ((slot.high & 0x8000) === 0) cpu.fault(Vector.NP, code);
}

/** IRET with EFLAGS.NT outside long mode: back to the task whose selector the current TSS's link field holds. */
export function returnFromNestedTask(cpu: Cpu): void {
  const link = cpu.supervisorRead(cpu.trBase >>> 0, 2);
  const slot = cpu.descriptorScratch;
  if ((link & 4) !== 0 || (link & 0xfffc) === 0 || !readDescriptor(cpu, link, slot)) cpu.fault(Vector.TS, link & 0xfffc);
  const type = (slot.high >> 8) & 0x1f;
  if (type !== TSS16_BUSY && type !== TSS32_BUSY) cpu.fault(Vector.TS, link & 0xfffc);
  if ((slot.high & 0x8000) === 0) cpu.fault(Vector.NP, link & 0xfffc);
  switchTask(cpu, link, slot, TaskSwitchReason.Iret, 0);
}

function probeSupervisorWrite(cpu: Cpu, linear: number, size: number): void {
  cpu.memoryPrivilege = 0;
  cpu.mmu.probeWrite(linear >>> 0, size);
  cpu.memoryPrivilege = cpu.cpl;
}

/**
 * Switches from the current task to the one whose TSS descriptor (already
 * checked for type and presence) is in `slot`, as SDM vol. 3 7.3 describes:
 * everything that can fault in the old task's context (TSS limits, reading
 * the new TSS, the old TSS being writable) is checked before anything
 * changes; the checks of the new task's LDT and segments then fault in the
 * new task's context. `ext` is OR-ed into error codes (1 for events
 * external to the program). Returns the new TSS's width (2 or 4 bytes), the
 * size an exception's error code is pushed with.
 */
export function switchTask(cpu: Cpu, selector: number, slot: DescriptorSlot, reason: TaskSwitchReason, ext: number): number {
  const newLow = slot.low;
  const newHigh = slot.high;
  const newAddress = slot.address;
  const newType = (newHigh >> 8) & 0xf;
  const new32 = (newType & 8) !== 0;
  const newBase = baseOf(newLow, newHigh);
  const newLimit = limitOf(newLow, newHigh);
  if (newLimit < (new32 ? 0x67 : 0x2b)) cpu.fault(Vector.TS, (selector & 0xfffc) | ext);
  const old32 = (cpu.trAttributes & 8) !== 0;
  const oldBase = cpu.trBase >>> 0;
  if (cpu.trLimit < (old32 ? 0x67 : 0x2b)) cpu.fault(Vector.TS, (cpu.trSelector & 0xfffc) | ext);

  // Read the whole new state first: a page fault here leaves the old task untouched.
  const registers = new Int32Array(8);
  const selectors = new Uint16Array(6);
  let eip: number;
  let eflags: number;
  let ldt: number;
  let cr3 = cpu.cr3;
  let trap = 0;
  if (new32) {
    cr3 = cpu.supervisorRead(newBase + 0x1c, 4);
    eip = cpu.supervisorRead(newBase + 0x20, 4) >>> 0;
    eflags = cpu.supervisorRead(newBase + 0x24, 4);
    for (let i = 0; i < 8; i++) registers[i] = cpu.supervisorRead(newBase + 0x28 + i * 4, 4);
    for (let seg = 0; seg < 6; seg++) selectors[seg] = cpu.supervisorRead(newBase + SEGMENT_OFFSET_32[seg]!, 2);
    ldt = cpu.supervisorRead(newBase + 0x60, 2);
    trap = cpu.supervisorRead(newBase + 0x64, 2) & 1;
  } else {
    eip = cpu.supervisorRead(newBase + 0x0e, 2);
    eflags = cpu.supervisorRead(newBase + 0x10, 2);
    // The upper halves of the registers read as all-ones after a switch to a 16-bit TSS (as Bochs documents).
    for (let i = 0; i < 8; i++) registers[i] = cpu.supervisorRead(newBase + 0x12 + i * 2, 2) | 0xffff0000;
    for (let seg = 0; seg < 4; seg++) selectors[seg] = cpu.supervisorRead(newBase + SEGMENT_OFFSET_16[seg]!, 2);
    ldt = cpu.supervisorRead(newBase + 0x2a, 2);
  }
  // The old TSS's dynamic fields, the new TSS's link and both descriptors must be writable before anything is.
  if (old32) probeSupervisorWrite(cpu, oldBase + 0x20, 0x40);
  else probeSupervisorWrite(cpu, oldBase + 0x0e, 0x1c);
  if (reason === TaskSwitchReason.Call || reason === TaskSwitchReason.Interrupt) probeSupervisorWrite(cpu, newBase, 2);
  const oldDescriptor = (cpu.gdtBase + (cpu.trSelector & 0xfff8)) >>> 0;
  if (reason === TaskSwitchReason.Jump || reason === TaskSwitchReason.Iret) probeSupervisorWrite(cpu, oldDescriptor + 4, 4);
  else probeSupervisorWrite(cpu, newAddress + 4, 4);

  // From here on the switch happens; faults belong to the new task.
  if (reason === TaskSwitchReason.Jump || reason === TaskSwitchReason.Iret) {
    const high = cpu.supervisorRead(oldDescriptor + 4, 4);
    cpu.supervisorWrite(oldDescriptor + 4, 4, high & ~BUSY_BIT);
  }
  let oldFlags = cpu.getFlags();
  if (reason === TaskSwitchReason.Iret) oldFlags &= ~Flag.NT;
  saveTask(cpu, oldBase, old32, oldFlags);
  if (reason === TaskSwitchReason.Call || reason === TaskSwitchReason.Interrupt) {
    cpu.supervisorWrite(newBase, 2, cpu.trSelector);
    eflags |= Flag.NT;
  }
  let trHigh = newHigh;
  if (reason !== TaskSwitchReason.Iret) {
    trHigh |= BUSY_BIT;
    cpu.supervisorWrite(newAddress + 4, 4, trHigh);
  }
  cpu.cr0 |= Cr0.TS;
  cpu.trSelector = selector & 0xffff;
  cpu.trBase = newBase;
  cpu.trLimit = newLimit;
  cpu.trAttributes = attributesOf(trHigh);
  if (new32 && (cpu.cr0 & Cr0.PG) !== 0) {
    cpu.cr3 = cr3;
    cpu.cr3High = 0;
    cpu.flushTranslations();
  }
  cpu.setFlags(new32 ? eflags : eflags & 0xffff);
  cpu.rip = eip;
  cpu.currentRip = eip;
  for (let i = 0; i < 8; i++) {
    cpu.low[i] = registers[i]!;
    cpu.high[i] = 0;
  }
  cpu.debug[7] = (cpu.debug[7]! & ~DR7_LOCAL_ENABLES) >>> 0;
  cpu.updateBreakpoints();
  loadTaskState(cpu, selectors, ldt, ext);
  if (trap !== 0) cpu.taskSwitchTrap();
  return new32 ? 4 : 2;
}

/** Writes the current task's EIP, EFLAGS, general registers and selectors into its TSS. */
function saveTask(cpu: Cpu, base: number, tss32: boolean, flags: number): void {
  if (tss32) {
    cpu.supervisorWrite(base + 0x20, 4, cpu.rip | 0);
    cpu.supervisorWrite(base + 0x24, 4, flags);
    for (let i = 0; i < 8; i++) cpu.supervisorWrite(base + 0x28 + i * 4, 4, cpu.low[i]!);
    for (let seg = 0; seg < 6; seg++) cpu.supervisorWrite(base + SEGMENT_OFFSET_32[seg]!, 2, cpu.segmentSelector[seg]!);
    return;
  }
  cpu.supervisorWrite(base + 0x0e, 2, cpu.rip & 0xffff);
  cpu.supervisorWrite(base + 0x10, 2, flags & 0xffff);
  for (let i = 0; i < 8; i++) cpu.supervisorWrite(base + 0x12 + i * 2, 2, cpu.low[i]! & 0xffff);
  for (let seg = 0; seg < 4; seg++) cpu.supervisorWrite(base + SEGMENT_OFFSET_16[seg]!, 2, cpu.segmentSelector[seg]!);
}

/**
 * Loads LDTR and the segment registers of the new task. The selectors are
 * installed first (with unusable caches) so that an exception raised by a
 * later check saves them in the new task's TSS.
 */
function loadTaskState(cpu: Cpu, selectors: Uint16Array, ldt: number, ext: number): void {
  const virtual8086 = (cpu.flags.bits & Flag.VM) !== 0;
  cpu.ldtSelector = ldt;
  cpu.ldtBase = 0;
  cpu.ldtLimit = 0;
  cpu.cpl = virtual8086 ? 3 : selectors[Seg.CS]! & 3;
  for (let seg = 0; seg < 6; seg++) {
    if (virtual8086) {
      const attributes = SegAttr.P | SegAttr.S | SegAttr.WRITABLE | SegAttr.ACCESSED | (3 << SegAttr.DPL_SHIFT);
      cpu.setSegmentCache(seg, selectors[seg]!, selectors[seg]! << 4, 0xffff, attributes);
    } else {
      cpu.setSegmentCache(seg, selectors[seg]!, 0, 0, 0);
    }
  }
  const slot = cpu.descriptorScratch;
  if ((ldt & 0xfffc) !== 0) {
    if ((ldt & 4) !== 0 || !readDescriptor(cpu, ldt, slot)) cpu.fault(Vector.TS, (ldt & 0xfffc) | ext);
    const attributes = attributesOf(slot.high);
    if ((attributes & 0x1f) !== 0x02 || (attributes & SegAttr.P) === 0) cpu.fault(Vector.TS, (ldt & 0xfffc) | ext);
    cpu.ldtBase = baseOf(slot.low, slot.high);
    cpu.ldtLimit = limitOf(slot.low, slot.high);
  }
  if (virtual8086) {
    cpu.refreshAllSegments();
    return;
  }
  for (const seg of LOAD_ORDER) loadTaskSegment(cpu, seg, selectors[seg]!, ext, slot);
  cpu.refreshAllSegments();
  if (cpu.rip > cpu.segmentLimit[Seg.CS]!) cpu.fault(Vector.GP, 0);
}

/** One segment register of the new task, with the checks of SDM vol. 3 table 7-1 (#TS, #NP, #SS). */
function loadTaskSegment(cpu: Cpu, seg: number, selector: number, ext: number, slot: DescriptorSlot): void {
  const code = (selector & 0xfffc) | ext;
  if ((selector & 0xfffc) === 0) {
    if (seg === Seg.CS || seg === Seg.SS) cpu.fault(Vector.TS, code);
    return;
  }
  if (!readDescriptor(cpu, selector, slot)) cpu.fault(Vector.TS, code);
  const attributes = attributesOf(slot.high);
  const dpl = (attributes >> SegAttr.DPL_SHIFT) & 3;
  const rpl = selector & 3;
  const isCode = (attributes & SegAttr.CODE) !== 0;
  const conforming = isCode && (attributes & SegAttr.CONFORMING) !== 0;
  if ((attributes & SegAttr.S) === 0) cpu.fault(Vector.TS, code);
  if (seg === Seg.CS) {
    if (!isCode || (conforming ? dpl > rpl : dpl !== rpl)) cpu.fault(Vector.TS, code);
    if ((attributes & SegAttr.P) === 0) cpu.fault(Vector.NP, code);
  } else if (seg === Seg.SS) {
    if (isCode || (attributes & SegAttr.WRITABLE) === 0 || dpl !== cpu.cpl || rpl !== cpu.cpl) cpu.fault(Vector.TS, code);
    if ((attributes & SegAttr.P) === 0) cpu.fault(Vector.SS, code);
  } else {
    if (isCode && (attributes & SegAttr.READABLE) === 0) cpu.fault(Vector.TS, code);
    if (!conforming && (dpl < cpu.cpl || dpl < rpl)) cpu.fault(Vector.TS, code);
    if ((attributes & SegAttr.P) === 0) cpu.fault(Vector.NP, code);
  }
  markAccessed(cpu, slot);
  cpu.setSegmentCache(seg, selector, baseOf(slot.low, slot.high), limitOf(slot.low, slot.high), attributesOf(slot.high));
}
