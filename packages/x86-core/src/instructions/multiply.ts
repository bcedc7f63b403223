import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { Flag, Reg, Vector } from '../state/registers.js';
import { memoryLinear, readValue, signExtend, truncate } from './operands.js';
import { FlagOp } from '../flags/lazy-flags.js';
import { divideUnsigned128, highOf32, multiplyUnsigned32, multiplyUnsigned64, negate128 } from './wide-math.js';

const OVERFLOW = Flag.CF | Flag.OF;

function readSource(cpu: Cpu, instruction: Instruction, size: number): number {
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, false) : 0;
  return readValue(cpu, instruction, instruction.kind0, instruction.register0, size, linear);
}

/**
 * Signed product of two `size`-byte values. Leaves the full product in
 * `cpu.wide` (words, least significant first; sizes 1 and 2 use word 0 only)
 * and returns true when it does not fit in `size` bytes.
 */
function signedProduct(cpu: Cpu, size: number, a: number, aHigh: number, b: number, bHigh: number): boolean {
  const words = cpu.wide;
  if (size <= 2) {
    const product = signExtend(a, size) * signExtend(b, size);
    words[0] = product;
    return product !== signExtend(product, size);
  }
  if (size === 4) {
    multiplyUnsigned32(a, b, words);
    let high = words[1]!;
    if ((a | 0) < 0) high = (high - b) | 0;
    if ((b | 0) < 0) high = (high - a) | 0;
    words[1] = high;
    return high !== words[0]! >> 31;
  }
  multiplyUnsigned64(a, aHigh, b, bHigh, cpu.digits, words);
  // Signed correction of the high 64 bits: subtract b if a < 0 and a if b < 0.
  let low = words[2]! >>> 0;
  let high = words[3]!;
  if ((aHigh | 0) < 0) {
    const difference = low - (b >>> 0);
    low = difference >>> 0;
    high = (high - bHigh - (difference < 0 ? 1 : 0)) | 0;
  }
  if ((bHigh | 0) < 0) {
    const difference = low - (a >>> 0);
    low = difference >>> 0;
    high = (high - aHigh - (difference < 0 ? 1 : 0)) | 0;
  }
  words[2] = low;
  words[3] = high;
  const sign = words[1]! >> 31;
  return (words[2]! | 0) !== sign || high !== sign;
}

export function mul(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const source = readSource(cpu, instruction, size);
  const sourceHigh = cpu.valueHigh;
  let overflow: boolean;
  let low: number;
  let high = 0;
  switch (size) {
    case 1: {
      const product = (cpu.low[Reg.RAX]! & 0xff) * source;
      cpu.low[Reg.RAX] = (cpu.low[Reg.RAX]! & ~0xffff) | product;
      overflow = product > 0xff;
      low = product & 0xff;
      break;
    }
    case 2: {
      const product = (cpu.low[Reg.RAX]! & 0xffff) * source;
      low = product & 0xffff;
      cpu.writeRegister(Reg.RAX, 2, low, 0);
      cpu.writeRegister(Reg.RDX, 2, product >>> 16, 0);
      overflow = product > 0xffff;
      break;
    }
    case 4: {
      multiplyUnsigned32(cpu.low[Reg.RAX]!, source, cpu.wide);
      low = cpu.wide[0]!;
      cpu.writeRegister(Reg.RAX, 4, low, 0);
      cpu.writeRegister(Reg.RDX, 4, cpu.wide[1]!, 0);
      overflow = cpu.wide[1] !== 0;
      break;
    }
    default: {
      multiplyUnsigned64(cpu.low[Reg.RAX]!, cpu.high[Reg.RAX]!, source, sourceHigh, cpu.digits, cpu.wide);
      const words = cpu.wide;
      low = words[0]!;
      high = words[1]!;
      cpu.writeRegister(Reg.RAX, 8, low, high);
      cpu.writeRegister(Reg.RDX, 8, words[2]!, words[3]!);
      overflow = (words[2]! | words[3]!) !== 0;
      break;
    }
  }
  cpu.flags.setResult(size, low, high, overflow ? OVERFLOW : 0);
}

/** One-operand IMUL: rDX:rAX = rAX × source, signed. */
export function imulOne(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const source = readSource(cpu, instruction, size);
  const sourceHigh = cpu.valueHigh;
  const accumulator = cpu.readRegister(Reg.RAX, size);
  const overflow = signedProduct(cpu, size, accumulator, cpu.valueHigh, source, sourceHigh);
  const words = cpu.wide;
  let low: number;
  let high = 0;
  if (size === 1) {
    low = words[0]! & 0xff;
    cpu.low[Reg.RAX] = (cpu.low[Reg.RAX]! & ~0xffff) | (words[0]! & 0xffff);
  } else if (size === 2) {
    low = words[0]! & 0xffff;
    cpu.writeRegister(Reg.RAX, 2, low, 0);
    cpu.writeRegister(Reg.RDX, 2, words[0]! >> 16, 0);
  } else if (size === 4) {
    low = words[0]!;
    cpu.writeRegister(Reg.RAX, 4, low, 0);
    cpu.writeRegister(Reg.RDX, 4, words[1]!, 0);
  } else {
    low = words[0]!;
    high = words[1]!;
    cpu.writeRegister(Reg.RAX, 8, low, high);
    cpu.writeRegister(Reg.RDX, 8, words[2]!, words[3]!);
  }
  cpu.flags.setResult(size, low, high, overflow ? OVERFLOW : 0);
}

/** IMUL r, r/m and IMUL r, r/m, imm: the truncated signed product. */
export function imul(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, false) : 0;
  const source = readValue(cpu, instruction, instruction.kind1, instruction.register1, size, linear);
  const sourceHigh = cpu.valueHigh;
  let other: number;
  let otherHigh: number;
  if (instruction.entry.operands.length === 3) {
    other = truncate(instruction.immediate, size);
    otherHigh = instruction.immediateHigh;
  } else {
    other = cpu.readRegister(instruction.register0, size);
    otherHigh = cpu.valueHigh;
  }
  // Only the truncated product is needed now; CF/OF are worked out from the operands if read.
  let low: number;
  let high = 0;
  if (size === 8) {
    low = Math.imul(source, other);
    high = (highOf32(source, other) + Math.imul(source, otherHigh) + Math.imul(sourceHigh, other)) | 0;
  } else low = truncate(Math.imul(source, other), size);
  cpu.writeRegister(instruction.register0, size, low, high);
  const flags = cpu.flags;
  flags.set64(FlagOp.Multiply, low, high, source | 0, sourceHigh | 0, other | 0, otherHigh | 0);
  flags.size = size;
}

export function div(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const divisor = readSource(cpu, instruction, size);
  const divisorHigh = size === 8 ? cpu.valueHigh : 0;
  if (divisor === 0 && divisorHigh === 0) cpu.fault(Vector.DE);
  switch (size) {
    case 1: {
      const dividend = cpu.low[Reg.RAX]! & 0xffff;
      const quotient = Math.floor(dividend / divisor);
      if (quotient > 0xff) cpu.fault(Vector.DE);
      cpu.low[Reg.RAX] = (cpu.low[Reg.RAX]! & ~0xffff) | quotient | ((dividend % divisor) << 8);
      return;
    }
    case 2: {
      const dividend = (cpu.low[Reg.RDX]! & 0xffff) * 65536 + (cpu.low[Reg.RAX]! & 0xffff);
      const quotient = Math.floor(dividend / divisor);
      if (quotient > 0xffff) cpu.fault(Vector.DE);
      cpu.writeRegister(Reg.RAX, 2, quotient, 0);
      cpu.writeRegister(Reg.RDX, 2, dividend % divisor, 0);
      return;
    }
    case 4: {
      if (cpu.low[Reg.RDX]! >>> 0 >= divisor >>> 0) cpu.fault(Vector.DE);
      divideUnsigned128(cpu.low[Reg.RAX]!, cpu.low[Reg.RDX]!, 0, 0, divisor, 0, cpu.wide);
      cpu.writeRegister(Reg.RAX, 4, cpu.wide[0]!, 0);
      cpu.writeRegister(Reg.RDX, 4, cpu.wide[4]!, 0);
      return;
    }
    default: {
      const rdxHigh = cpu.high[Reg.RDX]! >>> 0;
      const dHigh = divisorHigh >>> 0;
      if (rdxHigh > dHigh || (rdxHigh === dHigh && cpu.low[Reg.RDX]! >>> 0 >= divisor >>> 0)) cpu.fault(Vector.DE);
      divideUnsigned128(cpu.low[Reg.RAX]!, cpu.high[Reg.RAX]!, cpu.low[Reg.RDX]!, cpu.high[Reg.RDX]!, divisor, divisorHigh, cpu.wide);
      const words = cpu.wide;
      cpu.writeRegister(Reg.RAX, 8, words[0]!, words[1]!);
      cpu.writeRegister(Reg.RDX, 8, words[4]!, words[5]!);
      return;
    }
  }
}

export function idiv(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  let divisor = readSource(cpu, instruction, size);
  let divisorHigh = size === 8 ? cpu.valueHigh : 0;
  if (divisor === 0 && divisorHigh === 0) cpu.fault(Vector.DE);
  if (size <= 2) {
    const dividend = size === 1 ? signExtend(cpu.low[Reg.RAX]!, 2) : ((cpu.low[Reg.RDX]! & 0xffff) << 16) | (cpu.low[Reg.RAX]! & 0xffff);
    const signedDivisor = signExtend(divisor, size);
    const quotient = Math.trunc(dividend / signedDivisor);
    const limit = size === 1 ? 0x80 : 0x8000;
    if (quotient >= limit || quotient < -limit) cpu.fault(Vector.DE);
    const remainder = dividend - quotient * signedDivisor;
    if (size === 1) cpu.low[Reg.RAX] = (cpu.low[Reg.RAX]! & ~0xffff) | (quotient & 0xff) | ((remainder & 0xff) << 8);
    else {
      cpu.writeRegister(Reg.RAX, 2, quotient, 0);
      cpu.writeRegister(Reg.RDX, 2, remainder, 0);
    }
    return;
  }
  const words = cpu.wide;
  // Dividend as four words (sign-extended), then magnitudes.
  if (size === 4) {
    words[0] = cpu.low[Reg.RAX]!;
    words[1] = cpu.low[Reg.RDX]!;
    words[2] = words[1]! >> 31;
    words[3] = words[2]!;
    divisorHigh = divisor >> 31;
  } else {
    words[0] = cpu.low[Reg.RAX]!;
    words[1] = cpu.high[Reg.RAX]!;
    words[2] = cpu.low[Reg.RDX]!;
    words[3] = cpu.high[Reg.RDX]!;
  }
  const dividendNegative = words[3]! < 0;
  if (dividendNegative) negate128(words);
  const divisorNegative = divisorHigh < 0;
  if (divisorNegative) {
    const low = (~divisor >>> 0) + 1;
    divisor = low | 0;
    divisorHigh = (~divisorHigh + (low > 0xffffffff ? 1 : 0)) | 0;
  }
  if (size === 4) divisorHigh = 0;
  divideUnsigned128(words[0]!, words[1]!, words[2]!, words[3]!, divisor, divisorHigh, words);
  const negative = dividendNegative !== divisorNegative;
  // The quotient magnitude must fit: up to 2^(n-1) - 1, or 2^(n-1) when negative.
  const q0 = words[0]! >>> 0, q1 = words[1]! >>> 0;
  if (size === 4) {
    if ((words[1]! | words[2]! | words[3]!) !== 0 || q0 > (negative ? 0x80000000 : 0x7fffffff)) cpu.fault(Vector.DE);
    const quotient = negative ? -q0 | 0 : q0 | 0;
    const remainder = dividendNegative ? -(words[4]! >>> 0) | 0 : words[4]!;
    cpu.writeRegister(Reg.RAX, 4, quotient, 0);
    cpu.writeRegister(Reg.RDX, 4, remainder, 0);
    return;
  }
  if ((words[2]! | words[3]!) !== 0 || q1 > 0x80000000 || (q1 === 0x80000000 && (q0 !== 0 || !negative))) cpu.fault(Vector.DE);
  let quotientLow = words[0]!, quotientHigh = words[1]!;
  if (negative) {
    const low = (~quotientLow >>> 0) + 1;
    quotientLow = low | 0;
    quotientHigh = (~quotientHigh + (low > 0xffffffff ? 1 : 0)) | 0;
  }
  let remainderLow = words[4]!, remainderHigh = words[5]!;
  if (dividendNegative) {
    const low = (~remainderLow >>> 0) + 1;
    remainderLow = low | 0;
    remainderHigh = (~remainderHigh + (low > 0xffffffff ? 1 : 0)) | 0;
  }
  cpu.writeRegister(Reg.RAX, 8, quotientLow, quotientHigh);
  cpu.writeRegister(Reg.RDX, 8, remainderLow, remainderHigh);
}
