import type { CpuCore as Cpu } from '../cpu-core.js';
import { type Instruction, OperandKind, RIP_BASE } from '../decoder/instruction.js';

const TWO_32 = 4294967296;

/** The offset (within its segment) of the instruction's memory operand, wrapped to the address size. */
export function effectiveOffset(cpu: Cpu, instruction: Instruction): number {
  const base = instruction.base;
  const index = instruction.index;
  const size = instruction.addressSize;
  if (size === 4) {
    let sum = instruction.displacement;
    if (base >= 0) sum += base === RIP_BASE ? cpu.rip : cpu.low[base]!;
    if (index >= 0) sum += cpu.low[index]! << instruction.scale;
    return sum >>> 0;
  }
  if (size === 2) {
    let sum = instruction.displacement;
    if (base >= 0) sum += cpu.low[base]!;
    if (index >= 0) sum += cpu.low[index]!;
    return sum & 0xffff;
  }
  if (base === RIP_BASE) return cpu.rip + instruction.displacement;
  // Base plus displacement: exact for every base within 2^53 of zero, and a base further out is
  // non-canonical whatever a 32-bit displacement adds, so the linear-address check still faults.
  if (index < 0 && base >= 0) return cpu.high[base]! * TWO_32 + (cpu.low[base]! >>> 0) + instruction.displacement;
  effectivePair(cpu, instruction, cpu.pair);
  return cpu.pair[1]! * TWO_32 + (cpu.pair[0]! >>> 0);
}

/** The 64-bit effective address as exact halves (LEA and 64-bit addressing). */
export function effectivePair(cpu: Cpu, instruction: Instruction, pair: Int32Array): void {
  const base = instruction.base;
  const index = instruction.index;
  if (base === RIP_BASE) {
    const value = cpu.rip + instruction.displacement;
    pair[0] = value | 0;
    pair[1] = Math.floor(value / TWO_32) | 0;
    return;
  }
  let low = instruction.displacement >>> 0;
  let high = instruction.displacementHigh;
  if (base >= 0) {
    low += cpu.low[base]! >>> 0;
    high += cpu.high[base]!;
  }
  if (index >= 0) {
    const scale = instruction.scale;
    const indexLow = cpu.low[index]! >>> 0;
    if (scale === 0) {
      low += indexLow;
      high += cpu.high[index]!;
    } else {
      low += (indexLow << scale) >>> 0;
      high += (cpu.high[index]! << scale) | (indexLow >>> (32 - scale));
    }
  }
  pair[0] = low | 0;
  pair[1] = (high + Math.floor(low / TWO_32)) | 0;
}

/** The linear address of the memory operand, checked for an access of `size` bytes. */
export function memoryLinear(cpu: Cpu, instruction: Instruction, size: number, write: boolean): number {
  return cpu.linear(instruction.segment, effectiveOffset(cpu, instruction), size, write);
}

/** Reads operand (`kind`, `register`) of `size` bytes; the high half of 8-byte values goes to `cpu.valueHigh`. */
export function readValue(cpu: Cpu, instruction: Instruction, kind: number, register: number, size: number, linear: number): number {
  if (kind === OperandKind.Register) return cpu.readRegister(register, size);
  if (kind === OperandKind.Memory) return cpu.readLinear(linear, size);
  cpu.valueHigh = instruction.immediateHigh;
  const value = instruction.immediate;
  return size === 1 ? value & 0xff : size === 2 ? value & 0xffff : value;
}

export function writeValue(cpu: Cpu, kind: number, register: number, size: number, linear: number, value: number, high: number): void {
  if (kind === OperandKind.Register) cpu.writeRegister(register, size, value, high);
  else cpu.writeLinear(linear, size, value, high);
}

/** Masks a value to `size` bytes (1, 2) or to a signed 32-bit value (4, 8 low halves). */
export function truncate(value: number, size: number): number {
  return size === 1 ? value & 0xff : size === 2 ? value & 0xffff : value | 0;
}

/** Sign-extends the low `size` bytes of `value` to a signed 32-bit number. */
export function signExtend(value: number, size: number): number {
  return size === 1 ? (value << 24) >> 24 : size === 2 ? (value << 16) >> 16 : value | 0;
}

/** Reads a count/index register at the address size (rCX, rSI, rDI) as a number. */
export function readAddressRegister(cpu: Cpu, register: number, addressSize: number): number {
  return addressSize === 8 ? cpu.registerNumber(register) : addressSize === 4 ? cpu.low[register]! >>> 0 : cpu.low[register]! & 0xffff;
}

export function writeAddressRegister(cpu: Cpu, register: number, addressSize: number, value: number): void {
  if (addressSize === 8) cpu.setRegisterNumber(register, value);
  else if (addressSize === 4) {
    cpu.low[register] = value | 0;
    cpu.high[register] = 0;
  } else cpu.low[register] = (cpu.low[register]! & ~0xffff) | (value & 0xffff);
}

/** Wraps an address-sized register value after adding to it. */
export function wrapAddress(value: number, addressSize: number): number {
  if (addressSize === 4) return value >>> 0;
  if (addressSize === 2) return value & 0xffff;
  // 64-bit: keep it a signed 64-bit number (values stay far below 2^53 in practice; wrap at the ends).
  if (value >= 0x8000000000000000) return value - 0x10000000000000000;
  if (value < -0x8000000000000000) return value + 0x10000000000000000;
  return value;
}
