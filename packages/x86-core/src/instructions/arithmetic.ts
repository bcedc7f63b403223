import type { CpuCore as Cpu } from '../cpu-core.js';
import { type Instruction, OperandKind } from '../decoder/instruction.js';
import { FlagOp } from '../flags/lazy-flags.js';
import { Flag, Reg, Vector } from '../state/registers.js';
import { memoryLinear, readValue, truncate, writeValue } from './operands.js';

const TWO_32 = 4294967296;

/**
 * ADD/OR/ADC/SBB/AND/SUB/XOR/CMP (`op` 0–7 as in the opcode map) on values
 * of `size` bytes, recording flags. Returns the low half; for size 8 the high
 * half is left in `cpu.valueHigh`.
 */
export function arithmetic(cpu: Cpu, op: number, size: number, a: number, aHigh: number, b: number, bHigh: number): number {
  const flags = cpu.flags;
  if (size === 8) return arithmetic64(cpu, op, a, aHigh, b, bHigh);
  let result: number;
  switch (op) {
    case 0:
      result = truncate(a + b, size);
      flags.set(FlagOp.Add, size, result, a, b);
      return result;
    case 1:
      result = truncate(a | b, size);
      flags.set(FlagOp.Logic, size, result, 0, 0);
      return result;
    case 2: {
      const carry = flags.cf();
      result = truncate(a + b + carry, size);
      flags.set(carry !== 0 ? FlagOp.Adc : FlagOp.Add, size, result, a, b);
      return result;
    }
    case 3: {
      const borrow = flags.cf();
      result = truncate(a - b - borrow, size);
      flags.set(borrow !== 0 ? FlagOp.Sbb : FlagOp.Sub, size, result, a, b);
      return result;
    }
    case 4:
      result = truncate(a & b, size);
      flags.set(FlagOp.Logic, size, result, 0, 0);
      return result;
    case 6:
      result = truncate(a ^ b, size);
      flags.set(FlagOp.Logic, size, result, 0, 0);
      return result;
    default:
      result = truncate(a - b, size);
      flags.set(FlagOp.Sub, size, result, a, b);
      return result;
  }
}

function arithmetic64(cpu: Cpu, op: number, a: number, aHigh: number, b: number, bHigh: number): number {
  const flags = cpu.flags;
  let low: number;
  let high: number;
  let kind: FlagOp;
  switch (op) {
    case 1: low = a | b; high = aHigh | bHigh; kind = FlagOp.Logic; break;
    case 4: low = a & b; high = aHigh & bHigh; kind = FlagOp.Logic; break;
    case 6: low = a ^ b; high = aHigh ^ bHigh; kind = FlagOp.Logic; break;
    case 0: case 2: {
      const carryIn = op === 2 ? flags.cf() : 0;
      const sum = (a >>> 0) + (b >>> 0) + carryIn;
      low = sum | 0;
      high = (aHigh + bHigh + (sum >= TWO_32 ? 1 : 0)) | 0;
      kind = carryIn !== 0 ? FlagOp.Adc : FlagOp.Add;
      break;
    }
    default: {
      const borrowIn = op === 3 ? flags.cf() : 0;
      const difference = (a >>> 0) - (b >>> 0) - borrowIn;
      low = difference | 0;
      high = (aHigh - bHigh - (difference < 0 ? 1 : 0)) | 0;
      kind = borrowIn !== 0 ? FlagOp.Sbb : FlagOp.Sub;
      break;
    }
  }
  flags.set64(kind, low, high, a | 0, aHigh, b | 0, bHigh);
  cpu.valueHigh = high;
  return low;
}

export function alu(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const op = instruction.sub;
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, op !== 7) : 0;
  const a = readValue(cpu, instruction, instruction.kind0, instruction.register0, size, linear);
  const aHigh = cpu.valueHigh;
  const b = readValue(cpu, instruction, instruction.kind1, instruction.register1, size, linear);
  const result = arithmetic(cpu, op, size, a, aHigh, b, cpu.valueHigh);
  if (op !== 7) writeValue(cpu, instruction.kind0, instruction.register0, size, linear, result, cpu.valueHigh);
}

export function test(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, false) : 0;
  const a = readValue(cpu, instruction, instruction.kind0, instruction.register0, size, linear);
  const aHigh = cpu.valueHigh;
  const b = readValue(cpu, instruction, instruction.kind1, instruction.register1, size, linear);
  if (size === 8) cpu.flags.set64(FlagOp.Logic, a & b, aHigh & cpu.valueHigh, 0, 0, 0, 0);
  else cpu.flags.set(FlagOp.Logic, size, truncate(a & b, size), 0, 0);
}

function incrementDecrement(cpu: Cpu, instruction: Instruction, delta: number): void {
  const size = instruction.operandSize;
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, true) : 0;
  const value = readValue(cpu, instruction, instruction.kind0, instruction.register0, size, linear);
  let low: number;
  let high = 0;
  if (size === 8) {
    const sum = (value >>> 0) + delta;
    low = sum | 0;
    high = (cpu.valueHigh + (sum >= TWO_32 ? 1 : sum < 0 ? -1 : 0)) | 0;
  } else low = truncate(value + delta, size);
  writeValue(cpu, instruction.kind0, instruction.register0, size, linear, low, high);
  cpu.flags.setIncDec(delta > 0 ? FlagOp.Inc : FlagOp.Dec, size, low, high);
}

export function inc(cpu: Cpu, instruction: Instruction): void {
  incrementDecrement(cpu, instruction, 1);
}

export function dec(cpu: Cpu, instruction: Instruction): void {
  incrementDecrement(cpu, instruction, -1);
}

export function not(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, true) : 0;
  const value = readValue(cpu, instruction, instruction.kind0, instruction.register0, size, linear);
  writeValue(cpu, instruction.kind0, instruction.register0, size, linear, truncate(~value, size), ~cpu.valueHigh);
}

export function neg(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, true) : 0;
  const value = readValue(cpu, instruction, instruction.kind0, instruction.register0, size, linear);
  const result = arithmetic(cpu, 5, size, 0, 0, value, cpu.valueHigh);
  writeValue(cpu, instruction.kind0, instruction.register0, size, linear, result, cpu.valueHigh);
}

export function xadd(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, true) : 0;
  const destination = readValue(cpu, instruction, instruction.kind0, instruction.register0, size, linear);
  const destinationHigh = cpu.valueHigh;
  const source = cpu.readRegister(instruction.register1, size);
  const sum = arithmetic(cpu, 0, size, destination, destinationHigh, source, cpu.valueHigh);
  const sumHigh = cpu.valueHigh;
  if (instruction.kind0 === OperandKind.Memory) cpu.mmu.probeWrite(linear, size);
  cpu.writeRegister(instruction.register1, size, destination, destinationHigh);
  writeValue(cpu, instruction.kind0, instruction.register0, size, linear, sum, sumHigh);
}

export function cmpxchg(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, true) : 0;
  const destination = readValue(cpu, instruction, instruction.kind0, instruction.register0, size, linear);
  const destinationHigh = cpu.valueHigh;
  const accumulator = cpu.readRegister(Reg.RAX, size);
  arithmetic(cpu, 7, size, accumulator, cpu.valueHigh, destination, destinationHigh);
  if (cpu.flags.zf() !== 0) {
    const source = cpu.readRegister(instruction.register1, size);
    writeValue(cpu, instruction.kind0, instruction.register0, size, linear, source, cpu.valueHigh);
  } else {
    // The destination is written back even when unequal (a locked RMW cycle).
    if (instruction.kind0 === OperandKind.Memory) writeValue(cpu, instruction.kind0, instruction.register0, size, linear, destination, destinationHigh);
    cpu.writeRegister(Reg.RAX, size, destination, destinationHigh);
  }
}

/** CMPXCHG8B m64 / CMPXCHG16B m128 (REX.W). */
export function cmpxchgPair(cpu: Cpu, instruction: Instruction): void {
  const wide = instruction.operandSize === 8;
  if (wide && !cpu.model.features.has('cx16')) cpu.fault(Vector.UD);
  const half = wide ? 8 : 4;
  const offsetLinear = memoryLinear(cpu, instruction, half * 2, true);
  if (wide && offsetLinear % 16 !== 0) cpu.fault(Vector.GP, 0);
  const lowLow = cpu.readLinear(offsetLinear, 4);
  const lowHigh = wide ? cpu.readLinear(offsetLinear + 4, 4) : 0;
  const highLow = cpu.readLinear(offsetLinear + half, 4);
  const highHigh = wide ? cpu.readLinear(offsetLinear + half + 4, 4) : 0;
  const equal = lowLow === cpu.low[Reg.RAX] && highLow === cpu.low[Reg.RDX] && (!wide || (lowHigh === cpu.high[Reg.RAX] && highHigh === cpu.high[Reg.RDX]));
  cpu.flags.materialize();
  if (equal) {
    cpu.mmu.probeWrite(offsetLinear, half * 2);
    if (wide) {
      cpu.writeLinear(offsetLinear, 8, cpu.low[Reg.RBX]!, cpu.high[Reg.RBX]!);
      cpu.writeLinear(offsetLinear + 8, 8, cpu.low[Reg.RCX]!, cpu.high[Reg.RCX]!);
    } else {
      cpu.writeLinear(offsetLinear, 4, cpu.low[Reg.RBX]!, 0);
      cpu.writeLinear(offsetLinear + 4, 4, cpu.low[Reg.RCX]!, 0);
    }
    cpu.flags.bits |= Flag.ZF;
  } else {
    // Unequal: the old value is written back and loaded into EDX:EAX (RDX:RAX).
    cpu.mmu.probeWrite(offsetLinear, half * 2);
    cpu.writeRegister(Reg.RAX, half, lowLow, lowHigh);
    cpu.writeRegister(Reg.RDX, half, highLow, highHigh);
    cpu.flags.bits &= ~Flag.ZF;
  }
}
