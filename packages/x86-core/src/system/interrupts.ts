import type { CpuCore as Cpu } from '../cpu-core.js';
import { CodeMode } from '../decoder/instruction.js';
import { Flag, Seg, SegAttr, Vector } from '../state/registers.js';
import { attributesOf, baseOf, isRealOrVirtual8086, limitOf, markAccessed, readDescriptor, type DescriptorSlot } from './segmentation.js';
import { readTaskGateTarget, switchTask, TaskSwitchReason } from './task-switch.js';

/** How an event arose; it decides the EXT bit and the gate-DPL check. */
export enum EventKind {
  /** A fault or trap the CPU raised. */
  Exception = 0,
  /** INT n, INT3, INTO = the gate's DPL must allow the current privilege. */
  Software = 1,
  /** External interrupt or NMI. */
  External = 2,
}

const TWO_32 = 4294967296;

/** The data segment registers an event from virtual-8086 mode saves and clears. */
const VIRTUAL_8086_DATA_SEGMENTS = [Seg.ES, Seg.DS, Seg.FS, Seg.GS] as const;

/**
 * Delivers interrupt or exception `vector` through the IVT (real mode) or
 * IDT (protected and long mode). The return address pushed is `cpu.rip`.
 * `errorCode` is -1 when the vector pushes none. Faults while delivering
 * propagate to the caller (which escalates them to #DF or shutdown).
 */
export function deliverEvent(cpu: Cpu, vector: number, errorCode: number, kind: EventKind): void {
  const slot: DescriptorSlot = cpu.descriptorScratch;
  if ((cpu.flags.bits & Flag.VM) === 0 && isRealOrVirtual8086(cpu)) {
    deliverReal(cpu, vector);
  } else if (cpu.isLongMode()) {
    deliverLong(cpu, vector, errorCode, kind, slot);
  } else {
    deliverProtected(cpu, vector, errorCode, kind, slot);
  }
  cpu.attention = true;
}

function deliverReal(cpu: Cpu, vector: number): void {
  const entry = vector * 4;
  if (entry + 3 > cpu.idtLimit) cpu.fault(Vector.GP, vector * 8 + 2);
  const offset = cpu.supervisorRead((cpu.idtBase + entry) >>> 0, 2);
  const selector = cpu.supervisorRead((cpu.idtBase + entry + 2) >>> 0, 2);
  const flags = cpu.getFlags();
  cpu.push(2, flags, 0);
  cpu.push(2, cpu.segmentSelector[Seg.CS]!, 0);
  cpu.push(2, cpu.rip, 0);
  cpu.flags.setAll(flags & ~(Flag.IF | Flag.TF | Flag.AC | Flag.RF));
  cpu.setSegmentCache(Seg.CS, selector, selector << 4, cpu.segmentLimit[Seg.CS]!, cpu.segmentAttributes[Seg.CS]!);
  cpu.rip = offset;
}

/** The EXT bit of an error code: set unless the event is a software interrupt (INT n, INT3, INTO). */
function extBit(kind: EventKind): number {
  return kind === EventKind.Software ? 0 : 1;
}

function gateError(vector: number, kind: EventKind): number {
  return vector * 8 + 2 + extBit(kind);
}

/** Checks the code segment an IDT gate points at; returns its DPL. */
function checkGateTarget(cpu: Cpu, selector: number, kind: EventKind, slot: DescriptorSlot, long: boolean): number {
  const ext = extBit(kind);
  if ((selector & 0xfffc) === 0) cpu.fault(Vector.GP, ext);
  if (!readDescriptor(cpu, selector, slot)) cpu.fault(Vector.GP, (selector & 0xfffc) + ext);
  const attributes = attributesOf(slot.high);
  const dpl = (attributes >> SegAttr.DPL_SHIFT) & 3;
  if ((attributes & SegAttr.S) === 0 || (attributes & SegAttr.CODE) === 0 || dpl > cpu.cpl) cpu.fault(Vector.GP, (selector & 0xfffc) + ext);
  if (long && ((attributes & SegAttr.L) === 0 || (attributes & SegAttr.DB) !== 0)) cpu.fault(Vector.GP, (selector & 0xfffc) + ext);
  if ((attributes & SegAttr.P) === 0) cpu.fault(Vector.NP, (selector & 0xfffc) + ext);
  return (attributes & SegAttr.CONFORMING) !== 0 ? cpu.cpl : dpl;
}

/**
 * True when `bytes` pushed below `pointer` stay inside a stack segment with
 * `limit` and `attributes` (expand-up or expand-down, 16- or 32-bit).
 */
export function stackHasRoom(limit: number, attributes: number, pointer: number, bytes: number): boolean {
  const big = (attributes & SegAttr.DB) !== 0;
  const top = big ? 0xffffffff : 0xffff;
  let start = big ? pointer >>> 0 : pointer & 0xffff;
  // A stack pointer of zero pushes at the very top of the segment.
  if (start === 0) start = top + 1;
  const low = start - bytes;
  if (low < 0) return false;
  if ((attributes & SegAttr.EXPAND_DOWN) !== 0 && (attributes & SegAttr.CODE) === 0) return low > limit && start - 1 <= top;
  return start - 1 <= limit;
}

function deliverProtected(cpu: Cpu, vector: number, errorCode: number, kind: EventKind, slot: DescriptorSlot): void {
  const entry = vector * 8;
  const ext = extBit(kind);
  if (entry + 7 > cpu.idtLimit) cpu.fault(Vector.GP, gateError(vector, kind));
  const low = cpu.supervisorRead((cpu.idtBase + entry) >>> 0, 4);
  const high = cpu.supervisorRead((cpu.idtBase + entry + 4) >>> 0, 4);
  const type = (high >> 8) & 0x1f;
  const gateDpl = (high >> 13) & 3;
  if (type !== 0x05 && type !== 0x06 && type !== 0x07 && type !== 0x0e && type !== 0x0f) cpu.fault(Vector.GP, gateError(vector, kind));
  if (kind === EventKind.Software && gateDpl < cpu.cpl) cpu.fault(Vector.GP, vector * 8 + 2);
  if ((high & 0x8000) === 0) cpu.fault(Vector.NP, gateError(vector, kind));
  const selector = low >>> 16;
  if (type === 0x05) {
    // A task gate: the handler is another task; the error code goes on its stack.
    readTaskGateTarget(cpu, selector, slot, ext);
    const size = switchTask(cpu, selector, slot, TaskSwitchReason.Interrupt, ext);
    if (errorCode >= 0) cpu.push(size, errorCode, 0);
    return;
  }
  const gateSize = (type & 8) !== 0 ? 4 : 2;
  const offset = gateSize === 4 ? ((high & 0xffff0000) | (low & 0xffff)) >>> 0 : low & 0xffff;
  const fromVirtual8086 = (cpu.flags.bits & Flag.VM) !== 0;
  const newCpl = checkGateTarget(cpu, selector, kind, slot, false);
  // From virtual-8086 mode only a ring-0, non-conforming handler will do.
  if (fromVirtual8086 && newCpl !== 0) cpu.fault(Vector.GP, (selector & 0xfffc) + ext);
  const codeLow = slot.low;
  const codeHigh = slot.high;
  const codeAddress = slot.address;
  if (offset > limitOf(codeLow, codeHigh)) cpu.fault(Vector.GP, 0);
  const flags = cpu.getFlags();
  const oldCs = cpu.segmentSelector[Seg.CS]!;
  const oldRip = cpu.rip;
  const oldCpl = cpu.cpl;
  const oldSs = cpu.segmentSelector[Seg.SS]!;
  const oldSsBase = cpu.segmentBase[Seg.SS]!;
  const oldSsLimit = cpu.segmentLimit[Seg.SS]!;
  const oldSsAttributes = cpu.segmentAttributes[Seg.SS]!;
  const oldSp = cpu.low[4]!;
  const frameEntries = 3 + (errorCode >= 0 ? 1 : 0);
  try {
    if (newCpl < cpu.cpl) {
      // Inner privilege: take SS:ESP for the new level from the TSS.
      const tss32 = (cpu.trAttributes & 8) !== 0;
      const stackField = tss32 ? 4 + newCpl * 8 : 2 + newCpl * 4;
      if (stackField + (tss32 ? 5 : 3) > cpu.trLimit) cpu.fault(Vector.TS, (cpu.trSelector & 0xfffc) + ext);
      const stackSelector = tss32 ? cpu.supervisorRead((cpu.trBase + 8 + newCpl * 8) >>> 0, 2) : cpu.supervisorRead((cpu.trBase + 4 + newCpl * 4) >>> 0, 2);
      const stackPointer = tss32 ? cpu.supervisorRead((cpu.trBase + 4 + newCpl * 8) >>> 0, 4) >>> 0 : cpu.supervisorRead((cpu.trBase + 2 + newCpl * 4) >>> 0, 2);
      if ((stackSelector & 0xfffc) === 0 || (stackSelector & 3) !== newCpl) cpu.fault(Vector.TS, (stackSelector & 0xfffc) + ext);
      if (!readDescriptor(cpu, stackSelector, slot)) cpu.fault(Vector.TS, (stackSelector & 0xfffc) + ext);
      const stackAttributes = attributesOf(slot.high);
      if (((stackAttributes >> SegAttr.DPL_SHIFT) & 3) !== newCpl || (stackAttributes & (SegAttr.S | SegAttr.CODE | SegAttr.WRITABLE)) !== (SegAttr.S | SegAttr.WRITABLE)) {
        cpu.fault(Vector.TS, (stackSelector & 0xfffc) + ext);
      }
      if ((stackAttributes & SegAttr.P) === 0) cpu.fault(Vector.SS, (stackSelector & 0xfffc) + ext);
      const stackLimit = limitOf(slot.low, slot.high);
      const entries = frameEntries + 2 + (fromVirtual8086 ? 4 : 0);
      if (!stackHasRoom(stackLimit, stackAttributes, stackPointer, entries * gateSize)) cpu.fault(Vector.SS, (stackSelector & 0xfffc) + ext);
      markAccessed(cpu, slot);
      // The pushes on the inner stack are made at the new privilege.
      cpu.cpl = newCpl;
      cpu.setSegmentCache(Seg.SS, stackSelector, baseOf(slot.low, slot.high), stackLimit, stackAttributes);
      cpu.setStackPointer(stackPointer);
      if (fromVirtual8086) {
        cpu.push(gateSize, cpu.segmentSelector[Seg.GS]!, 0);
        cpu.push(gateSize, cpu.segmentSelector[Seg.FS]!, 0);
        cpu.push(gateSize, cpu.segmentSelector[Seg.DS]!, 0);
        cpu.push(gateSize, cpu.segmentSelector[Seg.ES]!, 0);
      }
      cpu.push(gateSize, oldSs, 0);
      cpu.push(gateSize, oldSp, 0);
    } else if (!stackHasRoom(oldSsLimit, oldSsAttributes, oldSp, frameEntries * gateSize)) {
      cpu.fault(Vector.SS, ext);
    }
    cpu.push(gateSize, flags, 0);
    cpu.push(gateSize, oldCs, 0);
    cpu.push(gateSize, oldRip, 0);
    if (errorCode >= 0) cpu.push(gateSize, errorCode, 0);
  } catch (error) {
    // Nothing of a frame that could not be pushed stays: the stack and privilege are as before.
    cpu.cpl = oldCpl;
    cpu.setSegmentCache(Seg.SS, oldSs, oldSsBase, oldSsLimit, oldSsAttributes);
    cpu.low[4] = oldSp;
    throw error;
  }
  if (fromVirtual8086) {
    for (const seg of VIRTUAL_8086_DATA_SEGMENTS) cpu.setSegmentCache(seg, 0, 0, 0, 0);
  }
  slot.low = codeLow;
  slot.high = codeHigh;
  slot.address = codeAddress;
  markAccessed(cpu, slot);
  cpu.cpl = newCpl;
  cpu.setSegmentCache(Seg.CS, (selector & 0xfffc) | newCpl, baseOf(codeLow, codeHigh), limitOf(codeLow, codeHigh), attributesOf(codeHigh));
  cpu.rip = offset;
  let cleared = Flag.TF | Flag.NT | Flag.RF | Flag.VM;
  if ((type & 1) === 0) cleared |= Flag.IF;
  cpu.flags.setAll(flags & ~cleared);
  cpu.refreshAllSegments();
}

function deliverLong(cpu: Cpu, vector: number, errorCode: number, kind: EventKind, slot: DescriptorSlot): void {
  const entry = vector * 16;
  if (entry + 15 > cpu.idtLimit) cpu.fault(Vector.GP, gateError(vector, kind));
  const at = cpu.idtBase + entry;
  const low = cpu.supervisorRead(at, 4);
  const high = cpu.supervisorRead(at + 4, 4);
  const upper = cpu.supervisorRead(at + 8, 4);
  const type = (high >> 8) & 0x1f;
  const gateDpl = (high >> 13) & 3;
  if (type !== 0x0e && type !== 0x0f) cpu.fault(Vector.GP, gateError(vector, kind));
  if (kind === EventKind.Software && gateDpl < cpu.cpl) cpu.fault(Vector.GP, vector * 8 + 2);
  if ((high & 0x8000) === 0) cpu.fault(Vector.NP, gateError(vector, kind));
  const selector = low >>> 16;
  const offset = (upper | 0) * TWO_32 + (((high & 0xffff0000) | (low & 0xffff)) >>> 0);
  const newCpl = checkGateTarget(cpu, selector, kind, slot, true);
  if (offset < -0x800000000000 || offset >= 0x800000000000) cpu.fault(Vector.GP, 0);
  const ist = high & 7;
  const flags = cpu.getFlags();
  const oldCs = cpu.segmentSelector[Seg.CS]!;
  const oldSs = cpu.segmentSelector[Seg.SS]!;
  const oldRip = cpu.rip;
  const oldRsp = cpu.registerNumber(4);
  let rsp = oldRsp;
  if (ist !== 0) rsp = readTss64(cpu, 0x24 + (ist - 1) * 8);
  else if (newCpl < cpu.cpl) rsp = readTss64(cpu, 4 + newCpl * 8);
  rsp -= ((rsp % 16) + 16) % 16;
  // Push SS, RSP, RFLAGS, CS, RIP [, error code] on the new stack, each 8 bytes.
  const values = cpu.interruptFrame;
  values[0] = oldSs;
  values[1] = oldRsp;
  values[2] = flags;
  values[3] = oldCs;
  values[4] = oldRip;
  values[5] = errorCode;
  const count = errorCode >= 0 ? 6 : 5;
  const savedCpl = cpu.cpl;
  cpu.cpl = newCpl;
  try {
    for (let i = 0; i < count; i++) {
      rsp -= 8;
      if (rsp < -0x800000000000 || rsp >= 0x800000000000) cpu.fault(Vector.SS, 0);
      const value = values[i]!;
      cpu.writeLinear(rsp, 8, value | 0, Math.floor(value / TWO_32) | 0);
    }
  } catch (error) {
    cpu.cpl = savedCpl;
    throw error;
  }
  if (newCpl !== savedCpl) cpu.setSegmentCache(Seg.SS, newCpl, 0, 0, (newCpl << SegAttr.DPL_SHIFT) | SegAttr.DB);
  markAccessed(cpu, slot);
  cpu.setSegmentCache(Seg.CS, (selector & 0xfffc) | newCpl, 0, 0xffffffff, attributesOf(slot.high));
  cpu.setRegisterNumber(4, rsp);
  cpu.rip = offset;
  let cleared = Flag.TF | Flag.NT | Flag.RF | Flag.VM;
  if ((type & 1) === 0) cleared |= Flag.IF;
  cpu.flags.setAll(flags & ~cleared);
  if (cpu.codeMode !== CodeMode.Bits64) cpu.updateMode();
}

/** A 64-bit field of the 64-bit TSS. */
function readTss64(cpu: Cpu, offset: number): number {
  if (offset + 7 > cpu.trLimit) cpu.fault(Vector.TS, cpu.trSelector & 0xfffc);
  const low = cpu.supervisorRead(cpu.trBase + offset, 4);
  const high = cpu.supervisorRead(cpu.trBase + offset + 4, 4);
  return (high | 0) * TWO_32 + (low >>> 0);
}
