import type { CpuCore as Cpu } from '../cpu-core.js';
import { type Instruction, OperandKind } from '../decoder/instruction.js';
import { Flag } from '../state/registers.js';
import { effectiveOffset, readValue, truncate } from './operands.js';

/** BT/BTS/BTR/BTC (`sub` 0–3) with a register or immediate bit offset. */
export function bitTest(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const bits = size * 8;
  const op = instruction.sub;
  let offset: number;
  if (instruction.kind1 === OperandKind.Immediate || !instruction.hasMemory) {
    // The offset is taken modulo the operand width: its low bits are exact in the low half.
    offset = (instruction.kind1 === OperandKind.Immediate ? instruction.immediate : cpu.low[instruction.register1]!) & (bits - 1);
  } else if (size === 8) offset = cpu.registerNumber(instruction.register1);
  else offset = size === 2 ? (cpu.low[instruction.register1]! << 16) >> 16 : cpu.low[instruction.register1]!;
  let linear = 0;
  let bit: number;
  if (instruction.hasMemory) {
    // A register offset may reach any bit relative to the operand's address.
    bit = instruction.kind1 === OperandKind.Immediate ? offset : cpu.low[instruction.register1]! & (bits - 1);
    const index = (offset - bit) / bits;
    let address = effectiveOffset(cpu, instruction) + index * size;
    if (instruction.addressSize === 4) address >>>= 0;
    else if (instruction.addressSize === 2) address &= 0xffff;
    linear = cpu.linear(instruction.segment, address, size, op !== 0);
  } else {
    bit = offset & (bits - 1);
  }
  const value = readValue(cpu, instruction, instruction.kind0, instruction.register0, size, linear);
  const high = cpu.valueHigh;
  const inHigh = bit >= 32;
  const word = inHigh ? high : value;
  const mask = 1 << (bit & 31);
  const set = (word & mask) !== 0;
  cpu.flags.materialize();
  cpu.flags.bits = (cpu.flags.bits & ~Flag.CF) | (set ? Flag.CF : 0);
  if (op === 0) return;
  const updated = op === 1 ? word | mask : op === 2 ? word & ~mask : word ^ mask;
  const newLow = inHigh ? value : truncate(updated, size);
  const newHigh = inHigh ? updated : high;
  if (instruction.kind0 === OperandKind.Register) cpu.writeRegister(instruction.register0, size, newLow, newHigh);
  else cpu.writeLinear(linear, size, newLow, newHigh);
}

function readSource(cpu: Cpu, instruction: Instruction, size: number): number {
  const linear = instruction.hasMemory ? cpu.linear(instruction.segment, effectiveOffset(cpu, instruction), size, false) : 0;
  return readValue(cpu, instruction, instruction.kind1, instruction.register1, size, linear);
}

function setZero(cpu: Cpu, zero: boolean): void {
  cpu.flags.materialize();
  cpu.flags.bits = (cpu.flags.bits & ~Flag.ZF) | (zero ? Flag.ZF : 0);
}

function trailingZeros(low: number, high: number, size: number): number {
  if (low !== 0) return 31 - Math.clz32(low & -low);
  if (size === 8 && high !== 0) return 32 + 31 - Math.clz32(high & -high);
  return size * 8;
}

function leadingZeros(low: number, high: number, size: number): number {
  if (size === 8) return high !== 0 ? Math.clz32(high) : 32 + Math.clz32(low);
  return Math.clz32(low) - (32 - size * 8);
}

export function bsf(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const value = readSource(cpu, instruction, size);
  const high = size === 8 ? cpu.valueHigh : 0;
  const zero = value === 0 && high === 0;
  // A zero source leaves the destination unchanged (what current processors do).
  if (!zero) cpu.writeRegister(instruction.register0, size, trailingZeros(value, high, size), 0);
  setZero(cpu, zero);
}

export function bsr(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const value = readSource(cpu, instruction, size);
  const high = size === 8 ? cpu.valueHigh : 0;
  const zero = value === 0 && high === 0;
  if (!zero) cpu.writeRegister(instruction.register0, size, size * 8 - 1 - leadingZeros(value, high, size), 0);
  setZero(cpu, zero);
}

function countOnes(value: number): number {
  let v = value - ((value >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

export function popcnt(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const value = readSource(cpu, instruction, size);
  const high = size === 8 ? cpu.valueHigh : 0;
  const count = countOnes(size === 2 ? value & 0xffff : value) + countOnes(high);
  cpu.writeRegister(instruction.register0, size, count, 0);
  cpu.flags.setAll((cpu.flags.get() & ~(Flag.CF | Flag.PF | Flag.AF | Flag.ZF | Flag.SF | Flag.OF)) | (count === 0 ? Flag.ZF : 0));
}

function countZeros(cpu: Cpu, instruction: Instruction, leading: boolean): void {
  const size = instruction.operandSize;
  const value = readSource(cpu, instruction, size);
  const high = size === 8 ? cpu.valueHigh : 0;
  const count = leading ? leadingZeros(value, high, size) : trailingZeros(value, high, size);
  cpu.writeRegister(instruction.register0, size, count, 0);
  cpu.flags.materialize();
  cpu.flags.bits = (cpu.flags.bits & ~(Flag.CF | Flag.ZF)) | (count === size * 8 ? Flag.CF : 0) | (count === 0 ? Flag.ZF : 0);
}

export function lzcnt(cpu: Cpu, instruction: Instruction): void {
  countZeros(cpu, instruction, true);
}

export function tzcnt(cpu: Cpu, instruction: Instruction): void {
  countZeros(cpu, instruction, false);
}

function swap32(value: number): number {
  return ((value >>> 24) | ((value >> 8) & 0xff00) | ((value << 8) & 0xff0000) | (value << 24)) | 0;
}

export function bswap(cpu: Cpu, instruction: Instruction): void {
  const register = instruction.register0;
  const size = instruction.operandSize;
  if (size === 8) cpu.writeRegister(register, 8, swap32(cpu.high[register]!), swap32(cpu.low[register]!));
  // BSWAP of a 16-bit register is undefined; processors produce zero.
  else if (size === 2) cpu.writeRegister(register, 2, 0, 0);
  else cpu.writeRegister(register, 4, swap32(cpu.low[register]!), 0);
}

/** MOVBE: a load or store with the bytes reversed. */
export function movbe(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const linear = cpu.linear(instruction.segment, effectiveOffset(cpu, instruction), size, instruction.sub === 1);
  if (instruction.sub === 0) {
    const value = cpu.readLinear(linear, size);
    if (size === 8) cpu.writeRegister(instruction.register0, 8, swap32(cpu.valueHigh), swap32(value));
    else if (size === 4) cpu.writeRegister(instruction.register0, 4, swap32(value), 0);
    else cpu.writeRegister(instruction.register0, 2, ((value >> 8) & 0xff) | ((value & 0xff) << 8), 0);
  } else {
    const register = instruction.register1;
    if (size === 8) cpu.writeLinear(linear, 8, swap32(cpu.high[register]!), swap32(cpu.low[register]!));
    else if (size === 4) cpu.writeLinear(linear, 4, swap32(cpu.low[register]!), 0);
    else {
      const value = cpu.low[register]!;
      cpu.writeLinear(linear, 2, ((value >> 8) & 0xff) | ((value & 0xff) << 8), 0);
    }
  }
}
