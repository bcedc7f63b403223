import type { CpuCore as Cpu } from '../cpu-core.js';
import { Seg, SegAttr, Vector } from '../state/registers.js';
import { attributesOf, baseOf, limitOf, loadCodeSegment, markAccessed, readDescriptor, type DescriptorSlot } from './segmentation.js';

const TWO_32 = 4294967296;

/**
 * A far JMP or CALL whose selector names a call gate (16/32-bit, or 64-bit
 * in long mode). CALL to a more privileged non-conforming segment switches
 * to the stack the TSS gives for that level and copies the gate's parameter
 * count of stack entries (legacy gates only). Task gates and TSS descriptors
 * raise #GP (task switching is not implemented).
 */
export function transferThroughGate(cpu: Cpu, selector: number, isCall: boolean, slot: DescriptorSlot): void {
  const gateLow = slot.low;
  const gateHigh = slot.high;
  const type = (gateHigh >> 8) & 0x1f;
  const long = cpu.isLongMode();
  const legacyGate = !long && (type === 0x04 || type === 0x0c);
  const longGate = long && type === 0x0c;
  if (!legacyGate && !longGate) cpu.fault(Vector.GP, selector & 0xfffc);
  const gateDpl = (gateHigh >> 13) & 3;
  if (gateDpl < cpu.cpl || gateDpl < (selector & 3)) cpu.fault(Vector.GP, selector & 0xfffc);
  if ((gateHigh & 0x8000) === 0) cpu.fault(Vector.NP, selector & 0xfffc);
  let offset = type === 0x04 ? gateLow & 0xffff : ((gateHigh & 0xffff0000) | (gateLow & 0xffff)) >>> 0;
  if (longGate) {
    const upper = cpu.supervisorRead(slot.address + 8, 4);
    const check = cpu.supervisorRead(slot.address + 12, 4);
    if (((check >> 8) & 0x1f) !== 0) cpu.fault(Vector.GP, selector & 0xfffc);
    offset = (upper | 0) * TWO_32 + offset;
  }
  const gateSize = longGate ? 8 : type === 0x0c ? 4 : 2;
  const parameters = legacyGate ? gateHigh & 0x1f : 0;
  const target = gateLow >>> 16;
  if ((target & 0xfffc) === 0) cpu.fault(Vector.GP, 0);
  if (!readDescriptor(cpu, target, slot)) cpu.fault(Vector.GP, target & 0xfffc);
  const attributes = attributesOf(slot.high);
  const dpl = (attributes >> SegAttr.DPL_SHIFT) & 3;
  if ((attributes & (SegAttr.S | SegAttr.CODE)) !== (SegAttr.S | SegAttr.CODE) || dpl > cpu.cpl) cpu.fault(Vector.GP, target & 0xfffc);
  if (longGate && ((attributes & SegAttr.L) === 0 || (attributes & SegAttr.DB) !== 0)) cpu.fault(Vector.GP, target & 0xfffc);
  if ((attributes & SegAttr.P) === 0) cpu.fault(Vector.NP, target & 0xfffc);
  const conforming = (attributes & SegAttr.CONFORMING) !== 0;
  const codeLow = slot.low, codeHigh = slot.high, codeAddress = slot.address;
  const restoreCode = (): void => {
    slot.low = codeLow;
    slot.high = codeHigh;
    slot.address = codeAddress;
  };
  if (!isCall) {
    if (!conforming && dpl !== cpu.cpl) cpu.fault(Vector.GP, target & 0xfffc);
    loadCodeSegment(cpu, target, slot, cpu.cpl);
    cpu.rip = offset;
    return;
  }
  const returnSelector = cpu.segmentSelector[Seg.CS]!;
  const returnOffset = cpu.rip;
  if (!conforming && dpl < cpu.cpl) {
    const oldSs = cpu.segmentSelector[Seg.SS]!;
    const oldSp = cpu.stackSize === 8 ? cpu.registerNumber(4) : cpu.stackPointer();
    const oldStackSize = cpu.stackSize;
    // Parameters are read from the caller's stack before switching.
    const values: number[] = [];
    for (let i = 0; i < parameters; i++) values.push(cpu.peek(i * gateSize, gateSize));
    if (longGate) {
      const rsp = readTss64(cpu, 4 + dpl * 8);
      cpu.cpl = dpl;
      cpu.setSegmentCache(Seg.SS, dpl, 0, 0, (dpl << SegAttr.DPL_SHIFT) | SegAttr.DB);
      cpu.setRegisterNumber(4, rsp - (((rsp % 16) + 16) % 16));
    } else {
      const tss32 = (cpu.trAttributes & 8) !== 0;
      const stackSelector = tss32 ? cpu.supervisorRead((cpu.trBase + 8 + dpl * 8) >>> 0, 2) : cpu.supervisorRead((cpu.trBase + 4 + dpl * 4) >>> 0, 2);
      const stackPointer = tss32 ? cpu.supervisorRead((cpu.trBase + 4 + dpl * 8) >>> 0, 4) >>> 0 : cpu.supervisorRead((cpu.trBase + 2 + dpl * 4) >>> 0, 2);
      if ((stackSelector & 0xfffc) === 0 || (stackSelector & 3) !== dpl) cpu.fault(Vector.TS, stackSelector & 0xfffc);
      if (!readDescriptor(cpu, stackSelector, slot)) cpu.fault(Vector.TS, stackSelector & 0xfffc);
      const stackAttributes = attributesOf(slot.high);
      if (((stackAttributes >> SegAttr.DPL_SHIFT) & 3) !== dpl || (stackAttributes & (SegAttr.S | SegAttr.CODE | SegAttr.WRITABLE)) !== (SegAttr.S | SegAttr.WRITABLE)) {
        cpu.fault(Vector.TS, stackSelector & 0xfffc);
      }
      if ((stackAttributes & SegAttr.P) === 0) cpu.fault(Vector.SS, stackSelector & 0xfffc);
      markAccessed(cpu, slot);
      cpu.cpl = dpl;
      cpu.setSegmentCache(Seg.SS, stackSelector, baseOf(slot.low, slot.high), limitOf(slot.low, slot.high), stackAttributes);
      cpu.setStackPointer(stackPointer);
    }
    cpu.push(gateSize, oldSs, 0);
    cpu.push(gateSize, oldSp | 0, oldStackSize === 8 ? Math.floor(oldSp / TWO_32) | 0 : 0);
    for (let i = parameters - 1; i >= 0; i--) cpu.push(gateSize, values[i]!, 0);
  }
  cpu.push(gateSize, returnSelector, 0);
  cpu.push(gateSize, returnOffset | 0, gateSize === 8 ? Math.floor(returnOffset / TWO_32) | 0 : 0);
  restoreCode();
  loadCodeSegment(cpu, target, slot, conforming ? cpu.cpl : dpl);
  cpu.rip = offset;
}

function readTss64(cpu: Cpu, offset: number): number {
  if (offset + 7 > cpu.trLimit) cpu.fault(Vector.TS, cpu.trSelector & 0xfffc);
  const low = cpu.supervisorRead(cpu.trBase + offset, 4);
  const high = cpu.supervisorRead(cpu.trBase + offset + 4, 4);
  return (high | 0) * TWO_32 + (low >>> 0);
}
