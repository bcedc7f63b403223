import type { CpuCore as Cpu } from '../cpu-core.js';
import { CodeMode, type Instruction } from '../decoder/instruction.js';
import { Flag, Reg, Seg, SegAttr, Vector } from '../state/registers.js';
import { deliverEvent, EventKind } from '../system/interrupts.js';
import {
  attributesOf,
  checkFarCodeTarget,
  isRealOrVirtual8086,
  loadCodeSegment,
  loadDataSegment,
  nullInaccessibleSegments,
  readDescriptor,
} from '../system/segmentation.js';
import { transferThroughGate } from '../system/call-gates.js';
import { farTaskTransfer, isTaskDescriptor, returnFromNestedTask } from '../system/task-switch.js';
import { writeFlagsChecked } from './data-transfer.js';
import { memoryLinear, readAddressRegister, readValue, wrapAddress, writeAddressRegister } from './operands.js';

const TWO_32 = 4294967296;

/** Checks and wraps a near branch target for the current mode and operand size. */
function target(cpu: Cpu, value: number, size: number): number {
  if (cpu.codeMode === CodeMode.Bits64) {
    if (value < -0x800000000000 || value >= 0x800000000000) cpu.fault(Vector.GP, 0);
    return value;
  }
  const wrapped = size === 2 ? value & 0xffff : value >>> 0;
  if (wrapped > cpu.segmentLimit[Seg.CS]!) cpu.fault(Vector.GP, 0);
  return wrapped;
}

export function jcc(cpu: Cpu, instruction: Instruction): void {
  if (cpu.flags.condition(instruction.sub)) cpu.rip = target(cpu, cpu.rip + instruction.immediate, instruction.operandSize);
}

export function jmp(cpu: Cpu, instruction: Instruction): void {
  cpu.rip = target(cpu, cpu.rip + instruction.immediate, instruction.operandSize);
}

function readTarget(cpu: Cpu, instruction: Instruction, size: number): number {
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, false) : 0;
  const low = readValue(cpu, instruction, instruction.kind0, instruction.register0, size, linear);
  return size === 8 ? cpu.valueHigh * TWO_32 + (low >>> 0) : size === 4 ? low >>> 0 : low;
}

export function jmpIndirect(cpu: Cpu, instruction: Instruction): void {
  cpu.rip = target(cpu, readTarget(cpu, instruction, instruction.operandSize), instruction.operandSize);
}

function pushReturn(cpu: Cpu, size: number): void {
  const rip = cpu.rip;
  cpu.push(size, rip | 0, size === 8 ? Math.floor(rip / TWO_32) | 0 : 0);
}

export function call(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const destination = target(cpu, cpu.rip + instruction.immediate, size);
  pushReturn(cpu, size);
  cpu.rip = destination;
}

export function callIndirect(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const destination = target(cpu, readTarget(cpu, instruction, size), size);
  pushReturn(cpu, size);
  cpu.rip = destination;
}

export function ret(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const low = cpu.peek(0, size);
  const value = size === 8 ? cpu.valueHigh * TWO_32 + (low >>> 0) : size === 4 ? low >>> 0 : low & 0xffff;
  const destination = target(cpu, value, size);
  cpu.pop(size);
  if (instruction.entry.operands.length > 0) cpu.setStackPointer(wrapStack(cpu, cpu.stackPointer() + (instruction.immediate & 0xffff)));
  cpu.rip = destination;
}

function wrapStack(cpu: Cpu, value: number): number {
  return cpu.stackSize === 8 ? value : cpu.stackSize === 4 ? value >>> 0 : value & 0xffff;
}

/** LOOPNE (`sub` 0), LOOPE (1), LOOP (2): count in rCX at the address size. */
export function loop(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.addressSize;
  const count = wrapAddress(readAddressRegister(cpu, Reg.RCX, size) - 1, size);
  writeAddressRegister(cpu, Reg.RCX, size, count);
  let taken = count !== 0;
  if (instruction.sub === 0) taken = taken && cpu.flags.zf() === 0;
  else if (instruction.sub === 1) taken = taken && cpu.flags.zf() !== 0;
  if (taken) cpu.rip = target(cpu, cpu.rip + instruction.immediate, instruction.operandSize);
}

export function jcxz(cpu: Cpu, instruction: Instruction): void {
  if (readAddressRegister(cpu, Reg.RCX, instruction.addressSize) === 0) cpu.rip = target(cpu, cpu.rip + instruction.immediate, instruction.operandSize);
}

/** Far JMP/CALL to `selector:offset`: a code segment, a call gate, or a task switch through a TSS or task gate. */
function farTransfer(cpu: Cpu, selector: number, offset: number, size: number, isCall: boolean): void {
  selector &= 0xffff;
  if (isRealOrVirtual8086(cpu)) {
    const destination = size === 2 ? offset & 0xffff : offset >>> 0;
    if (isCall) {
      cpu.push(size, cpu.segmentSelector[Seg.CS]!, 0);
      pushReturn(cpu, size);
    }
    cpu.setSegmentCache(Seg.CS, selector, selector << 4, cpu.segmentLimit[Seg.CS]!, cpu.segmentAttributes[Seg.CS]!);
    cpu.rip = destination;
    return;
  }
  const slot = cpu.descriptorScratch;
  if ((selector & 0xfffc) !== 0 && readDescriptor(cpu, selector, slot) && (attributesOf(slot.high) & SegAttr.S) === 0) {
    // A system descriptor: a TSS or task gate switches tasks (outside long mode), a call gate transfers.
    if (!cpu.isLongMode() && isTaskDescriptor((slot.high >> 8) & 0x1f)) farTaskTransfer(cpu, selector, isCall, slot);
    else transferThroughGate(cpu, selector, isCall, slot);
    return;
  }
  const cpl = checkFarCodeTarget(cpu, selector, slot);
  const attributes = attributesOf(slot.high);
  const long = cpu.isLongMode() && (attributes & SegAttr.L) !== 0;
  let destination = size === 2 ? offset & 0xffff : size === 4 ? offset >>> 0 : offset;
  if (long) {
    if (destination < -0x800000000000 || destination >= 0x800000000000) cpu.fault(Vector.GP, 0);
  } else {
    destination = size === 2 ? destination & 0xffff : destination >>> 0;
    const raw = (slot.low & 0xffff) | (slot.high & 0xf0000);
    const limit = (slot.high & 0x800000) !== 0 ? raw * 4096 + 0xfff : raw;
    if (destination > limit) cpu.fault(Vector.GP, 0);
  }
  if (isCall) {
    cpu.push(size, cpu.segmentSelector[Seg.CS]!, 0);
    pushReturn(cpu, size);
  }
  loadCodeSegment(cpu, selector, slot, cpl);
  cpu.rip = destination;
}

export function jmpFar(cpu: Cpu, instruction: Instruction): void {
  farTransfer(cpu, instruction.immediate2, instruction.immediate, instruction.operandSize, false);
}

export function callFar(cpu: Cpu, instruction: Instruction): void {
  farTransfer(cpu, instruction.immediate2, instruction.immediate, instruction.operandSize, true);
}

function readFarPointer(cpu: Cpu, instruction: Instruction): number {
  const size = instruction.operandSize;
  const linear = memoryLinear(cpu, instruction, size + 2, false);
  const low = cpu.readLinear(linear, size);
  const offset = size === 8 ? cpu.valueHigh * TWO_32 + (low >>> 0) : size === 4 ? low >>> 0 : low & 0xffff;
  cpu.valueHigh = cpu.readLinear(linear + size, 2);
  return offset;
}

export function jmpFarIndirect(cpu: Cpu, instruction: Instruction): void {
  const offset = readFarPointer(cpu, instruction);
  farTransfer(cpu, cpu.valueHigh, offset, instruction.operandSize, false);
}

export function callFarIndirect(cpu: Cpu, instruction: Instruction): void {
  const offset = readFarPointer(cpu, instruction);
  farTransfer(cpu, cpu.valueHigh, offset, instruction.operandSize, true);
}

function stackValue(cpu: Cpu, depth: number, size: number): number {
  const low = cpu.peek(depth, size);
  return size === 8 ? cpu.valueHigh * TWO_32 + (low >>> 0) : size === 4 ? low >>> 0 : low & 0xffff;
}

/**
 * Checks the code segment a far return or IRET goes back to and loads it
 * (with SS:rSP from the stack when the privilege drops or in 64-bit mode).
 */
function returnTo(cpu: Cpu, size: number, extra: number, flagsDepth: number, alwaysStack: boolean): void {
  const destination = stackValue(cpu, 0, size);
  const selector = cpu.peek(size, 2) & 0xffff;
  const rpl = selector & 3;
  if ((selector & 0xfffc) === 0) cpu.fault(Vector.GP, 0);
  if (rpl < cpu.cpl) cpu.fault(Vector.GP, selector & 0xfffc);
  const slot = cpu.descriptorScratch;
  if (!readDescriptor(cpu, selector, slot)) cpu.fault(Vector.GP, selector & 0xfffc);
  const attributes = attributesOf(slot.high);
  const dpl = (attributes >> SegAttr.DPL_SHIFT) & 3;
  if ((attributes & SegAttr.S) === 0 || (attributes & SegAttr.CODE) === 0) cpu.fault(Vector.GP, selector & 0xfffc);
  if ((attributes & SegAttr.CONFORMING) !== 0 ? dpl > rpl : dpl !== rpl) cpu.fault(Vector.GP, selector & 0xfffc);
  if ((attributes & SegAttr.P) === 0) cpu.fault(Vector.NP, selector & 0xfffc);
  const toLong = cpu.isLongMode() && (attributes & SegAttr.L) !== 0;
  const frame = flagsDepth >= 0 ? 3 * size : 2 * size;
  const outer = rpl > cpu.cpl;
  const withStack = outer || alwaysStack;
  let stackPointer = 0;
  let stackSelector = 0;
  if (withStack) {
    stackPointer = stackValue(cpu, frame + extra, size);
    stackSelector = cpu.peek(frame + extra + size, 2) & 0xffff;
  }
  if (flagsDepth >= 0) writeFlagsChecked(cpu, stackValue(cpu, flagsDepth, size), size, true);
  const savedCodeLow = slot.low, savedCodeHigh = slot.high, savedCodeAddress = slot.address;
  if (withStack) {
    const previousCpl = cpu.cpl;
    cpu.cpl = rpl;
    try {
      if ((stackSelector & 0xfffc) === 0 && toLong && rpl < 3) cpu.setSegmentCache(Seg.SS, stackSelector, 0, 0, (rpl << SegAttr.DPL_SHIFT) | SegAttr.DB);
      else loadDataSegment(cpu, Seg.SS, stackSelector, slot);
    } catch (error) {
      cpu.cpl = previousCpl;
      throw error;
    }
  }
  slot.low = savedCodeLow;
  slot.high = savedCodeHigh;
  slot.address = savedCodeAddress;
  loadCodeSegment(cpu, selector, slot, rpl);
  let rip = destination;
  if (!toLong) rip = size === 2 ? rip & 0xffff : rip >>> 0;
  else if (rip < -0x800000000000 || rip >= 0x800000000000) cpu.fault(Vector.GP, 0);
  cpu.rip = rip;
  if (withStack) {
    const top = stackPointer + (flagsDepth < 0 ? extra : 0);
    if (cpu.stackSize === 8) cpu.setRegisterNumber(Reg.RSP, top);
    else cpu.setStackPointer(top);
  } else {
    cpu.setStackPointer(wrapStack(cpu, cpu.stackPointer() + frame + extra));
  }
  if (outer) nullInaccessibleSegments(cpu);
}

export function retFar(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const extra = instruction.entry.operands.length > 0 ? instruction.immediate & 0xffff : 0;
  if (isRealOrVirtual8086(cpu)) {
    const destination = stackValue(cpu, 0, size);
    const selector = cpu.peek(size, 2) & 0xffff;
    cpu.setStackPointer(wrapStack(cpu, cpu.stackPointer() + 2 * size + extra));
    cpu.setSegmentCache(Seg.CS, selector, selector << 4, cpu.segmentLimit[Seg.CS]!, cpu.segmentAttributes[Seg.CS]!);
    cpu.rip = destination;
    return;
  }
  returnTo(cpu, size, extra, -1, false);
}

export function iret(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  cpu.nmiBlocked = false;
  if (isRealOrVirtual8086(cpu)) {
    // In virtual-8086 mode IRET is IOPL-sensitive; at IOPL 3 it works as in real mode (IOPL itself stays).
    if ((cpu.flags.bits & Flag.VM) !== 0 && ((cpu.flags.bits >> 12) & 3) < 3) cpu.fault(Vector.GP, 0);
    const destination = stackValue(cpu, 0, size);
    if (destination > 0xffff && (cpu.flags.bits & Flag.VM) !== 0) cpu.fault(Vector.GP, 0);
    const selector = cpu.peek(size, 2) & 0xffff;
    const flags = stackValue(cpu, 2 * size, size);
    cpu.setStackPointer(wrapStack(cpu, cpu.stackPointer() + 3 * size));
    cpu.setSegmentCache(Seg.CS, selector, selector << 4, cpu.segmentLimit[Seg.CS]!, cpu.segmentAttributes[Seg.CS]!);
    cpu.rip = destination;
    writeFlagsChecked(cpu, flags, size, true);
    return;
  }
  const long = cpu.isLongMode();
  if ((cpu.flags.bits & Flag.NT) !== 0) {
    // Back to the task this one was nested in (no task switching in long mode).
    if (long) cpu.fault(Vector.GP, 0);
    returnFromNestedTask(cpu);
    return;
  }
  const flags = stackValue(cpu, 2 * size, size);
  if (!long && (flags & Flag.VM) !== 0 && cpu.cpl === 0 && size === 4) {
    returnToVirtual8086(cpu, flags);
    return;
  }
  returnTo(cpu, size, 0, 2 * size, cpu.codeMode === CodeMode.Bits64);
  cpu.refreshAllSegments();
  cpu.attention = true;
}

/**
 * IRETD at CPL 0 with VM set in the EFLAGS image: pops EIP, CS, EFLAGS, ESP,
 * SS, ES, DS, FS, GS and continues in virtual-8086 mode at CPL 3.
 */
function returnToVirtual8086(cpu: Cpu, flags: number): void {
  const eip = stackValue(cpu, 0, 4);
  if (eip > 0xffff) cpu.fault(Vector.GP, 0);
  const stackPointer = stackValue(cpu, 12, 4);
  // Stack slots above ESP, by segment number (ES, CS, SS, DS, FS, GS).
  const values = [cpu.peek(20, 2), cpu.peek(4, 2), cpu.peek(16, 2), cpu.peek(24, 2), cpu.peek(28, 2), cpu.peek(32, 2)];
  cpu.setFlags(flags);
  cpu.cpl = 3;
  const attributes = SegAttr.P | SegAttr.S | SegAttr.WRITABLE | SegAttr.ACCESSED | (3 << SegAttr.DPL_SHIFT);
  for (let seg = 0; seg < 6; seg++) cpu.setSegmentCache(seg, values[seg]! & 0xffff, (values[seg]! & 0xffff) << 4, 0xffff, attributes);
  cpu.low[Reg.RSP] = stackPointer;
  cpu.high[Reg.RSP] = 0;
  cpu.rip = eip;
  cpu.refreshAllSegments();
}

export function int(cpu: Cpu, instruction: Instruction): void {
  if ((cpu.flags.bits & Flag.VM) !== 0 && ((cpu.flags.bits >> 12) & 3) < 3) cpu.fault(Vector.GP, 0);
  deliverEvent(cpu, instruction.immediate & 0xff, -1, EventKind.Software);
}

export function int3(cpu: Cpu, _instruction: Instruction): void {
  deliverEvent(cpu, Vector.BP, -1, EventKind.Software);
}

export function into(cpu: Cpu, _instruction: Instruction): void {
  if (cpu.flags.of() !== 0) deliverEvent(cpu, Vector.OF, -1, EventKind.Software);
}

export function int1(cpu: Cpu, _instruction: Instruction): void {
  deliverEvent(cpu, Vector.DB, -1, EventKind.Exception);
}
