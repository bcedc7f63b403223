import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { FpuStatus } from '../fpu/fpu-state.js';
import { X87Transcendental } from '../fpu/x87-codes.js';
import { extendedArcTangent, extendedLogarithm, extendedPowerMinusOne, extendedTrigonometric, OUT_OF_RANGE } from '../fpu/softfloat/index.js';
import { enterX87, recordExceptions, stackOverflow, stackUnderflow, suppressesResult } from './x87-support.js';


/**
 * FSIN, FCOS, FSINCOS, FPTAN, F2XM1 (ST(0) in place; FSINCOS and FPTAN push a
 * second result) and FPATAN, FYL2X, FYL2XP1 (ST(1) op ST(0) into ST(1), then
 * pop). The arithmetic is softfloat's (transcendental.ts); this is the stack,
 * C2 and the exception bookkeeping.
 */
export function x87Transcendental(cpu: Cpu, instruction: Instruction): void {
  const fpu = enterX87(cpu, instruction);
  const operation = instruction.sub & 0xff;
  const result = fpu.result;
  const control = fpu.control;
  if (operation >= X87Transcendental.arcTangent) {
    if (fpu.isEmpty(0) || fpu.isEmpty(1)) {
      if (!stackUnderflow(fpu)) return;
      fpu.writeIndefinite(1);
      fpu.pop();
      return;
    }
    fpu.read(0, fpu.first);
    fpu.read(1, fpu.second);
    const flags = operation === X87Transcendental.arcTangent
      ? extendedArcTangent(fpu.second, fpu.first, control, result)
      : extendedLogarithm(fpu.first, fpu.second, operation === X87Transcendental.logarithmPlusOne, control, result);
    recordExceptions(fpu, flags);
    if (suppressesResult(fpu, flags)) return;
    fpu.write(1, result.signExponent, result.high, result.low);
    fpu.pop();
    return;
  }
  const pushes = operation === X87Transcendental.tangent || operation === X87Transcendental.sineCosine;
  if (fpu.isEmpty(0)) {
    if (!stackUnderflow(fpu)) return;
    fpu.writeIndefinite(0);
    if (pushes) pushIndefinite(fpu);
    return;
  }
  if (pushes && !fpu.isEmpty(7)) {
    // Masked, the host makes ST(0) the indefinite too before pushing another.
    if ((control & FpuStatus.IE) !== 0) fpu.writeIndefinite(0);
    stackOverflow(fpu);
    return;
  }
  fpu.read(0, fpu.first);
  const flags = operation === X87Transcendental.powerMinusOne
    ? extendedPowerMinusOne(fpu.first, control, result)
    : extendedTrigonometric(fpu.first, operation, control, result);
  if (flags === OUT_OF_RANGE) {
    // |x| >= 2^63: C2 says so and nothing else changes.
    fpu.status |= FpuStatus.C2;
    return;
  }
  if (operation !== X87Transcendental.powerMinusOne) fpu.status &= ~FpuStatus.C2;
  recordExceptions(fpu, flags);
  if (suppressesResult(fpu, flags)) return;
  fpu.write(0, result.signExponent, result.high, result.low);
  if (pushes) {
    fpu.push();
    fpu.write(0, result.second.signExponent, result.second.high, result.second.low);
  }
}

/** The masked underflow response of FSINCOS and FPTAN pushes a second indefinite (or overflows). */
function pushIndefinite(fpu: ReturnType<typeof enterX87>): void {
  if (!fpu.isEmpty(7)) {
    stackOverflow(fpu);
    return;
  }
  fpu.push();
  fpu.writeIndefinite(0);
}
