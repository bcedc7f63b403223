import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { FpuStatus } from '../fpu/fpu-state.js';
import { X87Unary } from '../fpu/x87-codes.js';
import {
  EXAMINE_EMPTY, extendedCompare, extendedExamine, extendedExtract, extendedRemainder, extendedRoundToInteger, extendedScale, extendedSquareRoot,
} from '../fpu/softfloat/index.js';
import { enterX87, recordExceptions, stackOverflow, stackUnderflow, suppressesResult } from './x87-support.js';


const CONDITIONS = FpuStatus.C0 | FpuStatus.C1 | FpuStatus.C2 | FpuStatus.C3;

/** FCHS, FABS, FTST, FXAM, FSQRT, FRNDINT, FSCALE, FXTRACT, FPREM, FPREM1 (all on ST(0), the last three with ST(1)). */
export function x87Unary(cpu: Cpu, instruction: Instruction): void {
  const fpu = enterX87(cpu, instruction);
  const operation = instruction.sub & 0xff;
  const value = fpu.first;
  if (operation === X87Unary.examine) {
    // FXAM never faults: an empty register reports C3/C0, with C1 the stale sign.
    const register = fpu.physical(0);
    const sign = (fpu.signExponent[register]! & 0x8000) !== 0 ? FpuStatus.C1 : 0;
    fpu.read(0, value);
    const codes = fpu.empty[register] === 1 ? EXAMINE_EMPTY | sign : extendedExamine(value);
    fpu.status = (fpu.status & ~CONDITIONS) | codes;
    return;
  }
  const binary = operation === X87Unary.scale || operation === X87Unary.remainder || operation === X87Unary.remainderNearest;
  if (fpu.isEmpty(0) || (binary && fpu.isEmpty(1))) {
    if (!stackUnderflow(fpu)) return;
    if (operation === X87Unary.test) fpu.status |= FpuStatus.C0 | FpuStatus.C2 | FpuStatus.C3;
    else if (operation === X87Unary.extract) {
      // Masked: ST(0) becomes the indefinite and the indefinite is pushed.
      fpu.writeIndefinite(0);
      if (fpu.empty[(fpu.top - 1) & 7] === 0) stackOverflow(fpu);
      else {
        fpu.push();
        fpu.writeIndefinite(0);
      }
    } else fpu.writeIndefinite(0);
    return;
  }
  fpu.read(0, value);
  const result = fpu.result;
  const control = fpu.control;
  let flags: number;
  switch (operation) {
    case X87Unary.changeSign:
    case X87Unary.absolute:
      fpu.write(0, operation === X87Unary.changeSign ? value.signExponent ^ 0x8000 : value.signExponent & 0x7fff, value.high, value.low);
      fpu.status &= ~FpuStatus.C1;
      return;
    case X87Unary.test: {
      const zero = fpu.second;
      zero.signExponent = 0;
      zero.high = 0;
      zero.low = 0;
      flags = extendedCompare(value, zero, false);
      fpu.status = (fpu.status & ~CONDITIONS) | (flags & (FpuStatus.C0 | FpuStatus.C2 | FpuStatus.C3));
      recordExceptions(fpu, flags & FpuStatus.exceptions);
      return;
    }
    case X87Unary.squareRoot: flags = extendedSquareRoot(value, control, result); break;
    case X87Unary.roundToInteger: flags = extendedRoundToInteger(value, control, result); break;
    case X87Unary.scale:
      fpu.read(1, fpu.second);
      flags = extendedScale(value, fpu.second, control, result);
      break;
    case X87Unary.extract: {
      if (fpu.empty[(fpu.top - 1) & 7] === 0) {
        stackOverflow(fpu);
        return;
      }
      flags = extendedExtract(value, result, control);
      recordExceptions(fpu, flags);
      if (suppressesResult(fpu, flags)) return;
      // ST(0) gets the exponent, then the significand is pushed on top of it.
      fpu.write(0, result.second.signExponent, result.second.high, result.second.low);
      fpu.push();
      fpu.write(0, result.signExponent, result.high, result.low);
      return;
    }
    default: {
      fpu.read(1, fpu.second);
      flags = extendedRemainder(value, fpu.second, operation === X87Unary.remainderNearest, result, control);
      // The quotient bits and the "incomplete" bit replace all four condition codes.
      fpu.status = (fpu.status & ~CONDITIONS) | (flags & CONDITIONS);
      recordExceptions(fpu, flags & ~FpuStatus.C1);
      fpu.status = (fpu.status & ~FpuStatus.C1) | (flags & FpuStatus.C1);
      if (suppressesResult(fpu, flags)) return;
      fpu.write(0, result.signExponent, result.high, result.low);
      return;
    }
  }
  recordExceptions(fpu, flags);
  if (suppressesResult(fpu, flags)) return;
  fpu.write(0, result.signExponent, result.high, result.low);
}
