import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { FpuStatus, type FpuState } from '../fpu/fpu-state.js';
import { EXCHANGE, STORE_POP, STORE_TRUNCATE, X87Load, X87Store } from '../fpu/x87-codes.js';
import {
  bcdToExtended, extendedToBcd, extendedToIeee, extendedToInteger, FLOAT32, FLOAT64, ieeeToExtended, INDEFINITE_HIGH, INDEFINITE_SIGN_EXPONENT, integerToExtended,
  Rounding,
} from '../fpu/softfloat/index.js';
import { memoryLinear } from './operands.js';
import {
  enterX87, pushValue, readExtendedMemory, recordExceptions, stackOverflow, stackUnderflow, suppressesResult, writeExtendedMemory,
} from './x87-support.js';


/**
 * FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ (D9 E8–EE): sign/exponent,
 * significand high and low, rounded to nearest. The processor keeps 66 bits
 * and rounds them under RC (SDM vol. 1, 8.3.8): L2T rounds up only in RC=up;
 * the others, whose nearest value was rounded up, lose one ulp in RC=down and
 * RC=chop.
 */
const CONSTANTS = [
  0x3fff, 0x80000000, 0x00000000,
  0x4000, 0xd49a784b, 0xcd1b8afe,
  0x3fff, 0xb8aa3b29, 0x5c17f0bc,
  0x4000, 0xc90fdaa2, 0x2168c235,
  0x3ffd, 0x9a209a84, 0xfbcff799,
  0x3ffe, 0xb17217f7, 0xd1cf79ac,
  0x0000, 0x00000000, 0x00000000,
] as const;

function loadConstant(fpu: FpuState, which: number): void {
  const value = fpu.first;
  value.signExponent = CONSTANTS[which * 3]!;
  value.high = CONSTANTS[which * 3 + 1]!;
  let low: number = CONSTANTS[which * 3 + 2]!;
  const rounding = (fpu.control >> 10) & 3;
  if (which === 1 && rounding === Rounding.up) low += 1;
  else if (which >= 2 && which <= 5 && (rounding === Rounding.down || rounding === Rounding.towardZero)) low -= 1;
  value.low = low >>> 0;
}

/** FLD, FILD, FBLD and the constants: convert the source, then push it. */
export function x87Load(cpu: Cpu, instruction: Instruction): void {
  const fpu = enterX87(cpu, instruction);
  const source = instruction.sub & 0xff;
  const value = fpu.first;
  const result = fpu.result;
  let flags = 0;
  switch (source) {
    case X87Load.float32:
      flags = ieeeToExtended(FLOAT32, 0, cpu.readLinear(memoryLinear(cpu, instruction, 4, false), 4) >>> 0, result);
      break;
    case X87Load.float64: {
      const low = cpu.readLinear(memoryLinear(cpu, instruction, 8, false), 8) >>> 0;
      flags = ieeeToExtended(FLOAT64, cpu.valueHigh >>> 0, low, result);
      break;
    }
    case X87Load.extended:
      readExtendedMemory(cpu, memoryLinear(cpu, instruction, 10, false), result);
      break;
    case X87Load.register:
      if (fpu.isEmpty(instruction.rmField & 7)) {
        if (fpu.empty[(fpu.top - 1) & 7] === 0) stackOverflow(fpu);
        else if (stackUnderflow(fpu)) {
          fpu.push();
          fpu.writeIndefinite(0);
        }
        return;
      }
      fpu.read(instruction.rmField & 7, result);
      break;
    case X87Load.int16: {
      const word = cpu.readLinear(memoryLinear(cpu, instruction, 2, false), 2);
      const signed = (word << 16) >> 16;
      integerToExtended(signed >> 31, signed, result);
      break;
    }
    case X87Load.int32: {
      const signed = cpu.readLinear(memoryLinear(cpu, instruction, 4, false), 4) | 0;
      integerToExtended(signed >> 31, signed, result);
      break;
    }
    case X87Load.int64: {
      const low = cpu.readLinear(memoryLinear(cpu, instruction, 8, false), 8);
      integerToExtended(cpu.valueHigh | 0, low | 0, result);
      break;
    }
    case X87Load.bcd:
      readExtendedMemory(cpu, memoryLinear(cpu, instruction, 10, false), value);
      bcdToExtended(value, result);
      break;
    default:
      loadConstant(fpu, source - X87Load.constant);
      result.signExponent = value.signExponent;
      result.high = value.high;
      result.low = value.low;
      break;
  }
  if (fpu.empty[(fpu.top - 1) & 7] === 0) {
    stackOverflow(fpu);
    return;
  }
  recordExceptions(fpu, flags);
  if (suppressesResult(fpu, flags)) return;
  value.signExponent = result.signExponent;
  value.high = result.high;
  value.low = result.low;
  pushValue(fpu, value);
}

const STORE_SIZES = [4, 8, 10, 0, 2, 4, 8, 10] as const;

/** FST, FSTP, FIST, FISTP, FISTTP, FBSTP to memory or ST(i). */
export function x87Store(cpu: Cpu, instruction: Instruction): void {
  const fpu = enterX87(cpu, instruction);
  const target = instruction.sub & 0xf;
  const pop = (instruction.sub & STORE_POP) !== 0;
  if (target === X87Store.register) {
    const destination = instruction.rmField & 7;
    if (fpu.isEmpty(0)) {
      if (!stackUnderflow(fpu)) return;
      fpu.writeIndefinite(destination);
    } else {
      fpu.read(0, fpu.first);
      fpu.write(destination, fpu.first.signExponent, fpu.first.high, fpu.first.low);
      fpu.status &= ~FpuStatus.C1;
    }
    if (pop) fpu.pop();
    return;
  }
  // Segment and write checks come before anything changes.
  const linear = memoryLinear(cpu, instruction, STORE_SIZES[target]!, true);
  const result = fpu.result;
  let flags = 0;
  if (fpu.isEmpty(0)) {
    if (!stackUnderflow(fpu)) return;
    writeIndefinite(cpu, linear, target);
    if (pop) fpu.pop();
    return;
  }
  const value = fpu.first;
  fpu.read(0, value);
  const truncate = (instruction.sub & STORE_TRUNCATE) !== 0;
  switch (target) {
    case X87Store.float32: flags = extendedToIeee(value, FLOAT32, fpu.control, result); break;
    case X87Store.float64: flags = extendedToIeee(value, FLOAT64, fpu.control, result); break;
    case X87Store.extended: break;
    case X87Store.int16: flags = extendedToInteger(value, 16, fpu.control, result, truncate); break;
    case X87Store.int32: flags = extendedToInteger(value, 32, fpu.control, result, truncate); break;
    case X87Store.int64: flags = extendedToInteger(value, 64, fpu.control, result, truncate); break;
    default: flags = extendedToBcd(value, fpu.control, result); break;
  }
  // An unmasked exception on a store to memory writes nothing and leaves the stack as it was.
  if ((flags & ~fpu.control & (FpuStatus.IE | FpuStatus.DE | FpuStatus.ZE | FpuStatus.OE | FpuStatus.UE)) !== 0) {
    recordExceptions(fpu, flags);
    return;
  }
  switch (target) {
    case X87Store.float32: case X87Store.int32: cpu.writeLinear(linear, 4, result.low | 0, 0); break;
    case X87Store.float64: case X87Store.int64: cpu.writeLinear(linear, 8, result.low | 0, result.high | 0); break;
    case X87Store.int16: cpu.writeLinear(linear, 2, result.low, 0); break;
    case X87Store.extended: writeExtendedMemory(cpu, linear, value.signExponent, value.high, value.low); break;
    default: writeExtendedMemory(cpu, linear, result.signExponent, result.high, result.low); break;
  }
  recordExceptions(fpu, flags);
  if (pop) fpu.pop();
}

/** The masked stack-underflow response of a store: the indefinite of the destination format. */
function writeIndefinite(cpu: Cpu, linear: number, target: number): void {
  switch (target) {
    case X87Store.float32: cpu.writeLinear(linear, 4, 0xffc00000 | 0, 0); return;
    case X87Store.float64: cpu.writeLinear(linear, 8, 0, 0xfff80000 | 0); return;
    case X87Store.extended: writeExtendedMemory(cpu, linear, INDEFINITE_SIGN_EXPONENT, INDEFINITE_HIGH, 0); return;
    case X87Store.int16: cpu.writeLinear(linear, 2, 0x8000, 0); return;
    case X87Store.int32: cpu.writeLinear(linear, 4, 0x80000000 | 0, 0); return;
    case X87Store.int64: cpu.writeLinear(linear, 8, 0, 0x80000000 | 0); return;
    // The packed-BCD indefinite: FFFF C000000000000000.
    default: writeExtendedMemory(cpu, linear, 0xffff, 0xc0000000, 0); return;
  }
}

/** FXCH ST(i) and FCMOVcc ST(0), ST(i) (`sub` 16 for FXCH, else the condition code). */
export function x87Exchange(cpu: Cpu, instruction: Instruction): void {
  const fpu = enterX87(cpu, instruction);
  const other = instruction.rmField & 7;
  const exchange = instruction.sub & 0xff;
  if (fpu.isEmpty(0) || fpu.isEmpty(other)) {
    if (!stackUnderflow(fpu)) return;
    if (exchange === EXCHANGE) {
      if (fpu.isEmpty(0)) fpu.writeIndefinite(0);
      if (fpu.isEmpty(other)) fpu.writeIndefinite(other);
    } else {
      fpu.writeIndefinite(0);
      return;
    }
  }
  fpu.status &= ~FpuStatus.C1;
  if (exchange === EXCHANGE) {
    fpu.read(0, fpu.first);
    fpu.read(other, fpu.second);
    fpu.write(0, fpu.second.signExponent, fpu.second.high, fpu.second.low);
    fpu.write(other, fpu.first.signExponent, fpu.first.high, fpu.first.low);
    return;
  }
  if (cpu.flags.condition(exchange)) {
    fpu.read(other, fpu.first);
    fpu.write(0, fpu.first.signExponent, fpu.first.high, fpu.first.low);
  }
}
