import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { FlagOp } from '../flags/lazy-flags.js';
import { Flag, Reg, Vector } from '../state/registers.js';
import { isRealOrVirtual8086 } from '../system/segmentation.js';
import { memoryLinear } from './operands.js';
import { shiftLeft64, shiftRight64 } from './shift.js';
import { multiplyUnsigned32, multiplyUnsigned64 } from './wide-math.js';

/*
 * BMI1, BMI2 (VEX-encoded, operands of 32 or 64 bits) and ADX, after the
 * SDM vol. 2 operation sections. Operand layout: ModRM.reg is the
 * destination (`regField`), VEX.vvvv the extra register (`vexRegister`),
 * ModRM.rm the register or memory source.
 */

/** VEX-encoded instructions are #UD in real-address and virtual-8086 mode. */
function checkVex(cpu: Cpu): void {
  if (isRealOrVirtual8086(cpu)) cpu.fault(Vector.UD);
}

/** The ModRM.rm operand of `size` bytes (4 or 8): the low half, the high half in `cpu.valueHigh` for 8. */
function readRm(cpu: Cpu, instruction: Instruction, size: number): number {
  if (instruction.hasMemory) return cpu.readLinear(memoryLinear(cpu, instruction, size, false), size);
  cpu.valueHigh = cpu.high[instruction.rmField]!;
  return cpu.low[instruction.rmField]!;
}

/** CF = OF = 0, SF/ZF (and the undefined PF) from the result. */
function logicFlags(cpu: Cpu, size: number, low: number, high: number): void {
  if (size === 8) cpu.flags.set64(FlagOp.Logic, low, high, 0, 0, 0, 0);
  else cpu.flags.set(FlagOp.Logic, size, low, 0, 0);
}

/** CF as given, OF = 0, SF/ZF (and the undefined PF) from the result. */
function resultFlags(cpu: Cpu, size: number, low: number, high: number, carry: boolean): void {
  cpu.flags.setResult(size, low, size === 8 ? high : 0, carry ? Flag.CF : 0);
}

/** Keeps the low `count` bits of a 32-bit value (count < 32). */
function lowBits(value: number, count: number): number {
  return value & ~(-1 << count);
}

/** Keeps the low `count` bits of the 64-bit value (low, high) into `pair` (64 and more keep everything). */
function keepLowBits(low: number, high: number, count: number, pair: Int32Array): void {
  pair[0] = count < 32 ? lowBits(low, count) : low;
  pair[1] = count < 32 ? 0 : count < 64 ? lowBits(high, count - 32) : high;
}

/** ANDN: destination = ~vvvv & r/m. */
export function andn(cpu: Cpu, instruction: Instruction): void {
  checkVex(cpu);
  const size = instruction.operandSize;
  const source = readRm(cpu, instruction, size);
  const first = instruction.vexRegister;
  const low = ~cpu.low[first]! & source;
  const high = size === 8 ? ~cpu.high[first]! & cpu.valueHigh : 0;
  cpu.writeRegister(instruction.regField, size, low, high);
  logicFlags(cpu, size, low, high);
}

/** BEXTR: the field of r/m starting at bit vvvv[7:0], vvvv[15:8] bits long; bits past the operand read as zero. */
export function bitFieldExtract(cpu: Cpu, instruction: Instruction): void {
  checkVex(cpu);
  const size = instruction.operandSize;
  const pair = cpu.pair;
  const value = readRm(cpu, instruction, size);
  const control = cpu.low[instruction.vexRegister]!;
  const start = control & 0xff;
  if (size === 8) shiftRight64(value, cpu.valueHigh, start, pair);
  else {
    pair[0] = start >= 32 ? 0 : value >>> start;
    pair[1] = 0;
  }
  keepLowBits(pair[0]!, pair[1]!, (control >>> 8) & 0xff, pair);
  cpu.writeRegister(instruction.regField, size, pair[0]!, pair[1]!);
  logicFlags(cpu, size, pair[0]!, pair[1]!);
}

/** Group 17 (`sub` = ModRM.reg): BLSR (1) x & (x - 1), BLSMSK (2) x ^ (x - 1), BLSI (3) x & -x, into VEX.vvvv. */
export function lowestSetBit(cpu: Cpu, instruction: Instruction): void {
  checkVex(cpu);
  const size = instruction.operandSize;
  const low = readRm(cpu, instruction, size);
  const high = size === 8 ? cpu.valueHigh : 0;
  const zero = low === 0 && high === 0;
  const borrow = low === 0 ? 1 : 0;
  let resultLow: number;
  let resultHigh: number;
  switch (instruction.sub) {
    case 1:
      resultLow = low & (low - 1);
      resultHigh = high & (high - borrow);
      break;
    case 2:
      resultLow = low ^ (low - 1);
      resultHigh = high ^ (high - borrow);
      break;
    default:
      resultLow = low & -low;
      resultHigh = high & (~high + borrow);
      break;
  }
  if (size !== 8) resultHigh = 0;
  cpu.writeRegister(instruction.vexRegister, size, resultLow | 0, resultHigh | 0);
  // CF: BLSI sets it for a non-zero source, BLSR and BLSMSK for a zero one.
  resultFlags(cpu, size, resultLow | 0, resultHigh | 0, instruction.sub === 3 ? !zero : zero);
}

/** BZHI: r/m with the bits from index vvvv[7:0] up cleared; CF = the index is past the operand. */
export function zeroHighBits(cpu: Cpu, instruction: Instruction): void {
  checkVex(cpu);
  const size = instruction.operandSize;
  const pair = cpu.pair;
  const low = readRm(cpu, instruction, size);
  const index = cpu.low[instruction.vexRegister]! & 0xff;
  keepLowBits(low, size === 8 ? cpu.valueHigh : 0, index, pair);
  cpu.writeRegister(instruction.regField, size, pair[0]!, pair[1]!);
  resultFlags(cpu, size, pair[0]!, pair[1]!, index > size * 8 - 1);
}

/** MULX: rDX × r/m unsigned, low half to VEX.vvvv, high half to ModRM.reg; flags untouched. */
export function multiplyFlagless(cpu: Cpu, instruction: Instruction): void {
  checkVex(cpu);
  const size = instruction.operandSize;
  const source = readRm(cpu, instruction, size);
  // The low half is written first: when both destinations are one register, it keeps the high half.
  if (size === 8) {
    const words = cpu.wide;
    multiplyUnsigned64(cpu.low[Reg.RDX]!, cpu.high[Reg.RDX]!, source, cpu.valueHigh, cpu.digits, words);
    cpu.writeRegister(instruction.vexRegister, 8, words[0]!, words[1]!);
    cpu.writeRegister(instruction.regField, 8, words[2]!, words[3]!);
  } else {
    const pair = cpu.pair;
    multiplyUnsigned32(cpu.low[Reg.RDX]!, source, pair);
    cpu.writeRegister(instruction.vexRegister, 4, pair[0]!, 0);
    cpu.writeRegister(instruction.regField, 4, pair[1]!, 0);
  }
}

function bitAt(low: number, high: number, index: number): number {
  return index < 32 ? (low >>> index) & 1 : (high >>> (index - 32)) & 1;
}

/**
 * PDEP (`sub` 0): the low bits of VEX.vvvv deposited, in order, at the set bits of the r/m mask.
 * PEXT (`sub` 1): the bits of VEX.vvvv at the set bits of the mask, packed into the low bits.
 */
export function parallelBits(cpu: Cpu, instruction: Instruction): void {
  checkVex(cpu);
  const size = instruction.operandSize;
  const mask = readRm(cpu, instruction, size);
  const maskHigh = size === 8 ? cpu.valueHigh : 0;
  const source = cpu.low[instruction.vexRegister]!;
  const sourceHigh = size === 8 ? cpu.high[instruction.vexRegister]! : 0;
  const deposit = instruction.sub === 0;
  let low = 0;
  let high = 0;
  let packed = 0;
  // Each set bit of the mask, lowest first: the low half, then the high half.
  for (let half = 0; half < 2; half++) {
    for (let remaining = half === 0 ? mask : maskHigh; remaining !== 0; remaining &= remaining - 1) {
      const lowest = remaining & -remaining;
      if (deposit) {
        if (bitAt(source, sourceHigh, packed) !== 0) {
          if (half === 0) low |= lowest;
          else high |= lowest;
        }
      } else if (((half === 0 ? source : sourceHigh) & lowest) !== 0) {
        if (packed < 32) low |= 1 << packed;
        else high |= 1 << (packed - 32);
      }
      packed++;
    }
  }
  cpu.writeRegister(instruction.regField, size, low, high);
}

/** RORX: r/m rotated right by the immediate (modulo the width); flags untouched. */
export function rotateFlagless(cpu: Cpu, instruction: Instruction): void {
  checkVex(cpu);
  const size = instruction.operandSize;
  let low = readRm(cpu, instruction, size);
  let high = size === 8 ? cpu.valueHigh : 0;
  let count = instruction.immediate & (size * 8 - 1);
  if (size === 8) {
    if (count >= 32) {
      const swapped = low;
      low = high;
      high = swapped;
      count -= 32;
    }
    if (count !== 0) {
      const rotated = (low >>> count) | (high << (32 - count));
      high = (high >>> count) | (low << (32 - count));
      low = rotated;
    }
  } else if (count !== 0) low = (low >>> count) | (low << (32 - count));
  cpu.writeRegister(instruction.regField, size, low | 0, high | 0);
}

/** SHLX (`sub` 0), SHRX (1), SARX (2): r/m shifted by VEX.vvvv modulo the width; flags untouched. */
export function shiftFlagless(cpu: Cpu, instruction: Instruction): void {
  checkVex(cpu);
  const size = instruction.operandSize;
  const low = readRm(cpu, instruction, size);
  const op = instruction.sub;
  if (size !== 8) {
    const count = cpu.low[instruction.vexRegister]! & 31;
    cpu.writeRegister(instruction.regField, 4, op === 0 ? low << count : op === 1 ? low >>> count : low >> count, 0);
    return;
  }
  const high = cpu.valueHigh;
  const count = cpu.low[instruction.vexRegister]! & 63;
  const pair = cpu.pair;
  if (op === 0) shiftLeft64(low, high, count, pair);
  else if (op === 1 || count === 0) shiftRight64(low, high, count, pair);
  else if (count < 32) {
    pair[0] = (low >>> count) | (high << (32 - count));
    pair[1] = high >> count;
  } else {
    pair[0] = high >> (count - 32);
    pair[1] = high >> 31;
  }
  cpu.writeRegister(instruction.regField, 8, pair[0]!, pair[1]!);
}

/** ADCX (`sub` 0: carry in and out through CF) and ADOX (1: through OF); no other flag changes. */
export function addCarryFlag(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const flags = cpu.flags;
  const flag = instruction.sub === 0 ? Flag.CF : Flag.OF;
  const source = readRm(cpu, instruction, size);
  const destination = instruction.regField;
  flags.materialize();
  const lowSum = (cpu.low[destination]! >>> 0) + (source >>> 0) + ((flags.bits & flag) !== 0 ? 1 : 0);
  let carry = lowSum > 0xffffffff;
  let high = 0;
  if (size === 8) {
    const highSum = (cpu.high[destination]! >>> 0) + (cpu.valueHigh >>> 0) + (carry ? 1 : 0);
    carry = highSum > 0xffffffff;
    high = highSum | 0;
  }
  cpu.writeRegister(destination, size, lowSum | 0, high);
  flags.bits = (flags.bits & ~flag) | (carry ? flag : 0);
}
