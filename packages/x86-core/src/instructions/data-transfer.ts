import type { CpuCore as Cpu } from '../cpu-core.js';
import { CodeMode, type Instruction, OperandKind } from '../decoder/instruction.js';
import { Flag, Reg, Seg, Vector } from '../state/registers.js';
import { loadDataSegment } from '../system/segmentation.js';
import { effectiveOffset, effectivePair, memoryLinear, readAddressRegister, readValue, signExtend, truncate, writeValue } from './operands.js';

export function mov(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  if (instruction.kind0 === OperandKind.Register && instruction.kind1 === OperandKind.Register) {
    const value = cpu.readRegister(instruction.register1, size);
    cpu.writeRegister(instruction.register0, size, value, cpu.valueHigh);
    return;
  }
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, instruction.kind0 === OperandKind.Memory) : 0;
  const value = readValue(cpu, instruction, instruction.kind1, instruction.register1, size, linear);
  writeValue(cpu, instruction.kind0, instruction.register0, size, linear, value, cpu.valueHigh);
}

function readNarrow(cpu: Cpu, instruction: Instruction, sourceSize: number): number {
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, sourceSize, false) : 0;
  return readValue(cpu, instruction, instruction.kind1, instruction.register1, sourceSize, linear);
}

export function movzx(cpu: Cpu, instruction: Instruction): void {
  const value = readNarrow(cpu, instruction, instruction.sub);
  cpu.writeRegister(instruction.register0, instruction.operandSize, value, 0);
}

export function movsx(cpu: Cpu, instruction: Instruction): void {
  const value = signExtend(readNarrow(cpu, instruction, instruction.sub), instruction.sub);
  const size = instruction.operandSize;
  cpu.writeRegister(instruction.register0, size, truncate(value, size), value >> 31);
}

export function movsxd(cpu: Cpu, instruction: Instruction): void {
  const value = readNarrow(cpu, instruction, 4) | 0;
  const size = instruction.operandSize;
  cpu.writeRegister(instruction.register0, size, truncate(value, size), value >> 31);
}

export function lea(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  if (instruction.addressSize === 8) {
    effectivePair(cpu, instruction, cpu.pair);
    cpu.writeRegister(instruction.register0, size, truncate(cpu.pair[0]!, size), cpu.pair[1]!);
  } else {
    const offset = effectiveOffset(cpu, instruction);
    cpu.writeRegister(instruction.register0, size, truncate(offset, size), 0);
  }
}

export function xchg(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, true) : 0;
  const first = readValue(cpu, instruction, instruction.kind0, instruction.register0, size, linear);
  const firstHigh = cpu.valueHigh;
  const second = cpu.readRegister(instruction.register1, size);
  const secondHigh = cpu.valueHigh;
  writeValue(cpu, instruction.kind0, instruction.register0, size, linear, second, secondHigh);
  cpu.writeRegister(instruction.register1, size, first, firstHigh);
}

export function cmov(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const value = readNarrow(cpu, instruction, size);
  if (cpu.flags.condition(instruction.sub)) cpu.writeRegister(instruction.register0, size, value, cpu.valueHigh);
  else if (size === 4) cpu.high[instruction.register0] = 0;
}

export function setcc(cpu: Cpu, instruction: Instruction): void {
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, 1, true) : 0;
  writeValue(cpu, instruction.kind0, instruction.register0, 1, linear, cpu.flags.condition(instruction.sub) ? 1 : 0, 0);
}

/** CBW / CWDE / CDQE. */
export function convert(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const value = cpu.low[Reg.RAX]!;
  if (size === 2) cpu.writeRegister(Reg.RAX, 2, (value << 24) >> 24, 0);
  else if (size === 4) cpu.writeRegister(Reg.RAX, 4, (value << 16) >> 16, 0);
  else cpu.writeRegister(Reg.RAX, 8, value, value >> 31);
}

/** CWD / CDQ / CQO. */
export function convertDouble(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const sign = size === 2 ? (cpu.low[Reg.RAX]! << 16) >> 31 : size === 4 ? cpu.low[Reg.RAX]! >> 31 : cpu.high[Reg.RAX]! >> 31;
  cpu.writeRegister(Reg.RDX, size, sign, sign);
}

export function lahf(cpu: Cpu, _instruction: Instruction): void {
  const flags = cpu.getFlags();
  cpu.setReg8(16, (flags & (Flag.SF | Flag.ZF | Flag.AF | Flag.PF | Flag.CF)) | 2);
}

export function sahf(cpu: Cpu, _instruction: Instruction): void {
  const mask = Flag.SF | Flag.ZF | Flag.AF | Flag.PF | Flag.CF;
  const ah = cpu.reg8(16);
  cpu.flags.setAll((cpu.getFlags() & ~mask) | (ah & mask));
}

export function xlat(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.addressSize;
  let offset = readAddressRegister(cpu, Reg.RBX, size) + (cpu.low[Reg.RAX]! & 0xff);
  if (size === 4) offset >>>= 0;
  else if (size === 2) offset &= 0xffff;
  const segment = instruction.segmentOverride >= 0 ? instruction.segmentOverride : Seg.DS;
  cpu.setReg8(Reg.RAX, cpu.read(segment, offset, 1));
}

export function push(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, false) : 0;
  const value = readValue(cpu, instruction, instruction.kind0, instruction.register0, size, linear);
  cpu.push(size, value, cpu.valueHigh);
}

export function pop(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  if (instruction.kind0 === OperandKind.Register) {
    const value = cpu.pop(size);
    cpu.writeRegister(instruction.register0, size, value, cpu.valueHigh);
    return;
  }
  // POP to memory: the address is computed with the stack pointer already incremented.
  const value = cpu.peek(0, size);
  const high = cpu.valueHigh;
  const before = cpu.stackPointer();
  cpu.pop(size);
  try {
    const linear = memoryLinear(cpu, instruction, size, true);
    cpu.writeLinear(linear, size, value, high);
  } catch (error) {
    cpu.setStackPointer(before);
    throw error;
  }
}

export function pusha(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const stack = cpu.low[Reg.RSP]!;
  const start = cpu.stackPointer();
  try {
    for (let register = 0; register < 8; register++) cpu.push(size, register === Reg.RSP ? stack : cpu.low[register]!, 0);
  } catch (error) {
    cpu.setStackPointer(start);
    throw error;
  }
}

export function popa(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  for (let i = 0; i < 8; i++) cpu.peek(i * size, size);
  for (let register = 7; register >= 0; register--) {
    const value = cpu.pop(size);
    if (register !== Reg.RSP) cpu.writeRegister(register, size, value, 0);
  }
}

export function pushf(cpu: Cpu, instruction: Instruction): void {
  if ((cpu.flags.bits & Flag.VM) !== 0 && ((cpu.flags.bits >> 12) & 3) < 3) cpu.fault(Vector.GP, 0);
  const flags = cpu.getFlags() & ~(Flag.VM | Flag.RF);
  cpu.push(instruction.operandSize, instruction.operandSize === 2 ? flags & 0xffff : flags, 0);
}

/** Writes RFLAGS from POPF/IRET with the privilege rules for IOPL and IF. */
export function writeFlagsChecked(cpu: Cpu, value: number, size: number, fromIret: boolean): void {
  const current = cpu.getFlags();
  const iopl = (current >> 12) & 3;
  let changeable = Flag.CF | Flag.PF | Flag.AF | Flag.ZF | Flag.SF | Flag.TF | Flag.DF | Flag.OF | Flag.NT;
  if (size !== 2) changeable |= Flag.AC | Flag.ID | (fromIret ? Flag.RF : 0);
  const real = (cpu.cr0 & 1) === 0;
  if (real || cpu.cpl === 0) changeable |= Flag.IOPL;
  if (real || cpu.cpl <= iopl) changeable |= Flag.IF;
  if (size === 2) changeable &= 0xffff;
  cpu.setFlags((current & ~changeable) | (value & changeable));
}

export function popf(cpu: Cpu, instruction: Instruction): void {
  if ((cpu.flags.bits & Flag.VM) !== 0 && ((cpu.flags.bits >> 12) & 3) < 3) cpu.fault(Vector.GP, 0);
  const size = instruction.operandSize;
  const value = cpu.pop(size);
  writeFlagsChecked(cpu, value, size, false);
}

export function enter(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const allocation = instruction.immediate & 0xffff;
  const level = instruction.immediate2 & 31;
  const start = cpu.stackPointer();
  const savedBase = cpu.low[Reg.RBP]!;
  const savedBaseHigh = cpu.high[Reg.RBP]!;
  try {
    cpu.push(size, cpu.low[Reg.RBP]!, cpu.high[Reg.RBP]!);
    const frame = cpu.stackPointer();
    if (level > 0) {
      let base = cpu.stackSize === 8 ? cpu.registerNumber(Reg.RBP) : cpu.stackSize === 4 ? savedBase >>> 0 : savedBase & 0xffff;
      for (let i = 1; i < level; i++) {
        base -= size;
        if (cpu.stackSize === 4) base >>>= 0;
        else if (cpu.stackSize === 2) base &= 0xffff;
        const value = cpu.read(Seg.SS, base, size);
        cpu.push(size, value, cpu.valueHigh);
      }
      cpu.push(size, frame | 0, Math.floor(frame / 4294967296) | 0);
    }
    const top = frame - allocation;
    // Touch the new top so a stack fault is raised here, as the processor does.
    if (allocation > 0) cpu.linear(Seg.SS, cpu.stackSize === 8 ? top : cpu.stackSize === 4 ? top >>> 0 : top & 0xffff, 1, true);
    if (size === 8) cpu.setRegisterNumber(Reg.RBP, frame);
    else cpu.writeRegister(Reg.RBP, size, frame, 0);
    cpu.setStackPointer(cpu.stackSize === 8 ? top : cpu.stackSize === 4 ? top >>> 0 : top & 0xffff);
  } catch (error) {
    cpu.setStackPointer(start);
    cpu.low[Reg.RBP] = savedBase;
    cpu.high[Reg.RBP] = savedBaseHigh;
    throw error;
  }
}

export function leave(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const base = cpu.stackSize === 8 ? cpu.registerNumber(Reg.RBP) : cpu.stackSize === 4 ? cpu.low[Reg.RBP]! >>> 0 : cpu.low[Reg.RBP]! & 0xffff;
  const value = cpu.read(Seg.SS, base, size);
  const high = cpu.valueHigh;
  cpu.setStackPointer(base);
  cpu.pop(size);
  cpu.writeRegister(Reg.RBP, size, value, high);
}

export function movFromSeg(cpu: Cpu, instruction: Instruction): void {
  const seg = instruction.regField;
  if (seg > 5) cpu.fault(Vector.UD);
  const selector = cpu.segmentSelector[seg]!;
  if (instruction.kind0 === OperandKind.Register) cpu.writeRegister(instruction.register0, instruction.operandSize === 1 ? 2 : instruction.operandSize, selector, 0);
  else cpu.writeLinear(memoryLinear(cpu, instruction, 2, true), 2, selector, 0);
}

function inhibitInterrupts(cpu: Cpu): void {
  cpu.inhibitUntil = cpu.instructionCount + 2;
  // After MOV SS / POP SS, debug traps (single step, data breakpoints) also wait for the next instruction.
  cpu.debugInhibitUntil = cpu.instructionCount + 2;
  cpu.attention = true;
}

export function movToSeg(cpu: Cpu, instruction: Instruction): void {
  const seg = instruction.regField;
  if (seg > 5 || seg === Seg.CS) cpu.fault(Vector.UD);
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, 2, false) : 0;
  const selector = readValue(cpu, instruction, instruction.kind1, instruction.register1, 2, linear);
  loadDataSegment(cpu, seg, selector, cpu.descriptorScratch);
  if (seg === Seg.SS) inhibitInterrupts(cpu);
}

export function pushSeg(cpu: Cpu, instruction: Instruction): void {
  cpu.push(instruction.operandSize, cpu.segmentSelector[instruction.sub]!, 0);
}

export function popSeg(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const selector = cpu.peek(0, size) & 0xffff;
  loadDataSegment(cpu, instruction.sub, selector, cpu.descriptorScratch);
  cpu.pop(size);
  if (instruction.sub === Seg.SS) inhibitInterrupts(cpu);
}

/** LES, LDS, LSS, LFS, LGS: a far pointer from memory into a segment register and a general register. */
export function loadFarPointer(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const linear = memoryLinear(cpu, instruction, size + 2, false);
  const offset = cpu.readLinear(linear, size);
  const offsetHigh = cpu.valueHigh;
  const selector = cpu.readLinear(linear + size, 2);
  loadDataSegment(cpu, instruction.sub, selector, cpu.descriptorScratch);
  cpu.writeRegister(instruction.register0, size, offset, offsetHigh);
  if (instruction.sub === Seg.SS) inhibitInterrupts(cpu);
}

export function bound(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const linear = memoryLinear(cpu, instruction, size * 2, false);
  const lower = signExtend(cpu.readLinear(linear, size), size);
  const upper = signExtend(cpu.readLinear(linear + size, size), size);
  const index = signExtend(cpu.readRegister(instruction.register0, size), size);
  if (index < lower || index > upper) cpu.fault(Vector.BR);
}

/** Whether the current code is 64-bit (for handlers that differ). */
export function isLong(cpu: Cpu): boolean {
  return cpu.codeMode === CodeMode.Bits64;
}
