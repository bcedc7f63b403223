import type { CpuCore as Cpu } from '../cpu-core.js';
import { type Instruction, OperandKind } from '../decoder/instruction.js';
import { Flag } from '../state/registers.js';
import { memoryLinear, readValue, signExtend } from './operands.js';

/** Shift helpers for 32-bit lanes that treat counts of 32 and more as shifting everything out. */
function shiftLeft(value: number, count: number): number {
  return count >= 32 ? 0 : value << count;
}
function shiftRight(value: number, count: number): number {
  return count >= 32 ? 0 : value >>> count;
}

/** 64-bit shifts on halves; the result's high half goes to `pair[1]`. */
export function shiftLeft64(low: number, high: number, count: number, pair: Int32Array): void {
  if (count === 0) { pair[0] = low; pair[1] = high; }
  else if (count < 32) { pair[1] = (high << count) | (low >>> (32 - count)); pair[0] = low << count; }
  else if (count < 64) { pair[1] = low << (count - 32); pair[0] = 0; }
  else { pair[0] = 0; pair[1] = 0; }
}
export function shiftRight64(low: number, high: number, count: number, pair: Int32Array): void {
  if (count === 0) { pair[0] = low; pair[1] = high; }
  else if (count < 32) { pair[0] = (low >>> count) | (high << (32 - count)); pair[1] = high >>> count; }
  else if (count < 64) { pair[0] = high >>> (count - 32); pair[1] = 0; }
  else { pair[0] = 0; pair[1] = 0; }
}
function bit64(low: number, high: number, index: number): number {
  return index < 32 ? (low >>> index) & 1 : (high >>> (index - 32)) & 1;
}

function countOf(cpu: Cpu, instruction: Instruction): number {
  return instruction.kind1 === OperandKind.Register ? cpu.low[1]! & 0xff : instruction.immediate & 0xff;
}

/** Writes rotate flags: only CF and OF change. */
function setRotateFlags(cpu: Cpu, carry: number, overflow: number): void {
  const flags = cpu.flags;
  flags.materialize();
  flags.bits = (flags.bits & ~(Flag.CF | Flag.OF)) | (carry !== 0 ? Flag.CF : 0) | (overflow !== 0 ? Flag.OF : 0);
}

/** Group 2: ROL, ROR, RCL, RCR, SHL, SHR, SAL, SAR (`instruction.sub` 0–7). */
export function shift(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const op = instruction.sub;
  const count = countOf(cpu, instruction) & (size === 8 ? 0x3f : 0x1f);
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, true) : 0;
  const value = readValue(cpu, instruction, instruction.kind0, instruction.register0, size, linear);
  const valueHigh = cpu.valueHigh;
  if (count === 0) {
    // No flags change, but a 32-bit register destination is still written (zero-extended).
    if (size === 4 && instruction.kind0 === OperandKind.Register) cpu.high[instruction.register0] = 0;
    return;
  }
  if (size === 8) {
    shift64(cpu, instruction, op, count, value, valueHigh, linear);
    return;
  }
  const bits = size * 8;
  const mask = size === 4 ? -1 : (1 << bits) - 1;
  const top = bits - 1;
  let result: number;
  let carry: number;
  let overflow: number;
  switch (op) {
    case 0: {
      const r = count % bits;
      result = (shiftLeft(value, r) | shiftRight(value & mask, bits - r)) & mask;
      if (r === 0) result = value & mask;
      carry = result & 1;
      overflow = ((result >>> top) & 1) ^ carry;
      write(cpu, instruction, size, linear, result, 0);
      setRotateFlags(cpu, carry, overflow);
      return;
    }
    case 1: {
      const r = count % bits;
      result = r === 0 ? value & mask : (shiftRight(value & mask, r) | shiftLeft(value, bits - r)) & mask;
      carry = (result >>> top) & 1;
      overflow = carry ^ ((result >>> (top - 1)) & 1);
      write(cpu, instruction, size, linear, result, 0);
      setRotateFlags(cpu, carry, overflow);
      return;
    }
    case 2: {
      const r = size === 4 ? count : count % (bits + 1);
      const carryIn = cpu.flags.cf();
      if (r === 0) {
        setRotateFlags(cpu, carryIn, ((value >>> top) & 1) ^ carryIn);
        return;
      }
      const unsigned = value & mask;
      result = (shiftLeft(unsigned, r) | shiftLeft(carryIn, r - 1) | shiftRight(unsigned >>> 0, bits + 1 - r)) & mask;
      carry = shiftRight(unsigned >>> 0, bits - r) & 1;
      overflow = ((result >>> top) & 1) ^ carry;
      write(cpu, instruction, size, linear, result, 0);
      setRotateFlags(cpu, carry, overflow);
      return;
    }
    case 3: {
      const r = size === 4 ? count : count % (bits + 1);
      const carryIn = cpu.flags.cf();
      overflow = ((value >>> top) & 1) ^ carryIn;
      if (r === 0) {
        setRotateFlags(cpu, carryIn, overflow);
        return;
      }
      const unsigned = value & mask;
      result = (shiftRight(unsigned >>> 0, r) | shiftLeft(carryIn, bits - r) | shiftLeft(unsigned, bits + 1 - r)) & mask;
      carry = (unsigned >>> (r - 1)) & 1;
      write(cpu, instruction, size, linear, result, 0);
      setRotateFlags(cpu, carry, overflow);
      return;
    }
    case 4: case 6:
      result = shiftLeft(value, count) & mask;
      carry = count <= bits ? shiftRight(value & mask, bits - count) & 1 : 0;
      overflow = ((result >>> top) & 1) ^ carry;
      break;
    case 5:
      result = shiftRight(value & mask, count) & mask;
      carry = shiftRight(value & mask, count - 1) & 1;
      overflow = (value >>> top) & 1;
      break;
    default: {
      const signed = signExtend(value, size);
      result = (signed >> Math.min(count, 31)) & mask;
      carry = (signed >> Math.min(count - 1, 31)) & 1;
      overflow = 0;
      break;
    }
  }
  write(cpu, instruction, size, linear, result, 0);
  cpu.flags.setResult(size, result, 0, (carry !== 0 ? Flag.CF : 0) | (overflow !== 0 ? Flag.OF : 0));
}

function write(cpu: Cpu, instruction: Instruction, size: number, linear: number, value: number, high: number): void {
  if (instruction.kind0 === OperandKind.Register) cpu.writeRegister(instruction.register0, size, value, high);
  else cpu.writeLinear(linear, size, value, high);
}

function shift64(cpu: Cpu, instruction: Instruction, op: number, count: number, low: number, high: number, linear: number): void {
  const pair = cpu.pair;
  const other = cpu.pairOther;
  let carry: number;
  let overflow: number;
  switch (op) {
    case 0: case 1: {
      if (op === 0) { shiftLeft64(low, high, count, pair); shiftRight64(low, high, 64 - count, other); }
      else { shiftRight64(low, high, count, pair); shiftLeft64(low, high, 64 - count, other); }
      const resultLow = pair[0]! | other[0]!;
      const resultHigh = pair[1]! | other[1]!;
      if (op === 0) { carry = resultLow & 1; overflow = (resultHigh >>> 31) ^ carry; }
      else { carry = resultHigh >>> 31; overflow = carry ^ ((resultHigh >>> 30) & 1); }
      write(cpu, instruction, 8, linear, resultLow, resultHigh);
      setRotateFlags(cpu, carry, overflow);
      return;
    }
    case 2: case 3: {
      const carryIn = cpu.flags.cf();
      let resultLow: number;
      let resultHigh: number;
      if (op === 2) {
        shiftLeft64(low, high, count, pair);
        shiftRight64(low, high, 65 - count, other);
        resultLow = pair[0]! | other[0]!;
        resultHigh = pair[1]! | other[1]!;
        if (count - 1 < 32) resultLow |= carryIn << (count - 1);
        else resultHigh |= carryIn << (count - 33);
        carry = bit64(low, high, 64 - count);
        overflow = (resultHigh >>> 31) ^ carry;
      } else {
        overflow = (high >>> 31) ^ carryIn;
        shiftRight64(low, high, count, pair);
        shiftLeft64(low, high, 65 - count, other);
        resultLow = pair[0]! | other[0]!;
        resultHigh = pair[1]! | other[1]!;
        const position = 64 - count;
        if (position < 32) resultLow |= carryIn << position;
        else resultHigh |= carryIn << (position - 32);
        carry = bit64(low, high, count - 1);
      }
      write(cpu, instruction, 8, linear, resultLow, resultHigh);
      setRotateFlags(cpu, carry, overflow);
      return;
    }
    case 4: case 6:
      shiftLeft64(low, high, count, pair);
      carry = bit64(low, high, 64 - count);
      overflow = (pair[1]! >>> 31) ^ carry;
      break;
    case 5:
      shiftRight64(low, high, count, pair);
      carry = bit64(low, high, count - 1);
      overflow = high >>> 31;
      break;
    default:
      shiftRight64(low, high, count, pair);
      if (high < 0) {
        // Fill the vacated top bits with ones.
        shiftLeft64(-1, -1, 64 - count, other);
        pair[0] = pair[0]! | other[0]!;
        pair[1] = pair[1]! | other[1]!;
      }
      carry = bit64(low, high, count - 1);
      overflow = 0;
      break;
  }
  write(cpu, instruction, 8, linear, pair[0]!, pair[1]!);
  cpu.flags.setResult(8, pair[0]!, pair[1]!, (carry !== 0 ? Flag.CF : 0) | (overflow !== 0 ? Flag.OF : 0));
}

/** SHLD (`left`) and SHRD: shift the destination, filling from the source register. */
function doubleShift(cpu: Cpu, instruction: Instruction, left: boolean): void {
  const size = instruction.operandSize;
  const count = (instruction.kind1 === OperandKind.Register && instruction.entry.operands[2] === 'CL' ? cpu.low[1]! : instruction.immediate) & (size === 8 ? 0x3f : 0x1f);
  const linear = instruction.hasMemory ? memoryLinear(cpu, instruction, size, true) : 0;
  const destination = readValue(cpu, instruction, instruction.kind0, instruction.register0, size, linear);
  const destinationHigh = cpu.valueHigh;
  const source = cpu.readRegister(instruction.register1, size);
  const sourceHigh = cpu.valueHigh;
  if (count === 0) {
    if (size === 4 && instruction.kind0 === OperandKind.Register) cpu.high[instruction.register0] = 0;
    return;
  }
  let resultLow: number;
  let resultHigh = 0;
  let carry: number;
  if (size === 8) {
    const pair = cpu.pair;
    const other = cpu.pairOther;
    if (left) {
      shiftLeft64(destination, destinationHigh, count, pair);
      shiftRight64(source, sourceHigh, 64 - count, other);
      carry = bit64(destination, destinationHigh, 64 - count);
    } else {
      shiftRight64(destination, destinationHigh, count, pair);
      shiftLeft64(source, sourceHigh, 64 - count, other);
      carry = bit64(destination, destinationHigh, count - 1);
    }
    resultLow = pair[0]! | other[0]!;
    resultHigh = pair[1]! | other[1]!;
  } else if (size === 4) {
    if (left) {
      resultLow = (destination << count) | shiftRight(source >>> 0, 32 - count);
      carry = shiftRight(destination >>> 0, 32 - count) & 1;
    } else {
      resultLow = (destination >>> count) | shiftLeft(source, 32 - count);
      carry = (destination >>> (count - 1)) & 1;
    }
  } else {
    // 16-bit: shift the 32-bit concatenation (counts above 16 are undefined; this is one consistent choice).
    if (left) {
      const combined = ((destination << 16) | source) >>> 0;
      resultLow = shiftRight(shiftLeft(combined, count) >>> 0, 16) & 0xffff;
      if (count > 16) resultLow = (shiftLeft(source, count - 16) | shiftRight(destination, 32 - count)) & 0xffff;
      carry = count <= 16 ? (destination >>> (16 - count)) & 1 : (source >>> (32 - count)) & 1;
    } else {
      const combined = ((source << 16) | destination) >>> 0;
      resultLow = shiftRight(combined, count) & 0xffff;
      if (count > 16) resultLow = (shiftRight(source, count - 16) | shiftLeft(destination, 32 - count)) & 0xffff;
      carry = (combined >>> (count - 1)) & 1;
    }
  }
  write(cpu, instruction, size, linear, resultLow, resultHigh);
  const signBefore = size === 8 ? destinationHigh >>> 31 : (destination >>> (size * 8 - 1)) & 1;
  const signAfter = size === 8 ? resultHigh >>> 31 : (resultLow >>> (size * 8 - 1)) & 1;
  cpu.flags.setResult(size, size === 2 ? resultLow & 0xffff : resultLow, resultHigh, (carry !== 0 ? Flag.CF : 0) | (signBefore !== signAfter ? Flag.OF : 0));
}

export function shld(cpu: Cpu, instruction: Instruction): void {
  doubleShift(cpu, instruction, true);
}

export function shrd(cpu: Cpu, instruction: Instruction): void {
  doubleShift(cpu, instruction, false);
}
