import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { FpuStatus, type FpuState } from '../fpu/fpu-state.js';
import { CONTROL, NO_WAIT } from '../fpu/x87-codes.js';
import type { ExtendedBits } from '../fpu/softfloat/index.js';
import { Cr0, Seg, Vector } from '../state/registers.js';
import { effectiveOffset } from './operands.js';


/**
 * What every x87 instruction does first: #NM when CR0.EM or CR0.TS is set,
 * then (waiting forms) the pending-exception check of `signalPendingError`.
 */
export function enterX87(cpu: Cpu, instruction: Instruction): FpuState {
  const fpu = cpu.fpu;
  if ((cpu.cr0 & (Cr0.EM | Cr0.TS)) !== 0) cpu.fault(Vector.NM);
  if ((instruction.sub & NO_WAIT) === 0 && (fpu.status & FpuStatus.ES) !== 0) signalPendingError(cpu);
  if ((instruction.sub & CONTROL) === 0) {
    fpu.instructionOffset = cpu.currentRip;
    fpu.instructionSelector = cpu.segmentSelector[Seg.CS]!;
    fpu.opcode = ((instruction.opcode & 7) << 8) | (instruction.mod << 6) | ((instruction.regField & 7) << 3) | (instruction.rmField & 7);
    if (instruction.hasMemory) {
      fpu.dataOffset = effectiveOffset(cpu, instruction);
      fpu.dataSelector = cpu.segmentSelector[instruction.segment]!;
    }
  }
  return fpu;
}

/**
 * A waiting x87 instruction (or WAIT) with an unmasked exception pending:
 * #MF when CR0.NE is set; with NE clear, FERR# and a freeze until an
 * interrupt or IGNNE# (when the platform wired FERR#; without it, and while
 * IGNNE# is asserted, the instruction proceeds).
 */
export function signalPendingError(cpu: Cpu): void {
  if ((cpu.cr0 & Cr0.NE) !== 0) cpu.fault(Vector.MF);
  if (cpu.floatingPointError !== undefined && !cpu.ignoringNumericError) cpu.freezeOnFloatingPointError();
}

/** FERR# goes inactive once ES is clear (FNCLEX, FNINIT, FLDCW, FLDENV, FRSTOR, FXRSTOR, FNSAVE). */
export function releaseErrorSignal(cpu: Cpu): void {
  if (cpu.floatingPointErrorAsserted && (cpu.fpu.status & FpuStatus.ES) === 0) cpu.setFloatingPointError(false);
}

/**
 * Records exception flags (status-word layout, plus C1 "rounded up") from a
 * softfloat result: C1 is replaced, the sticky flags are ORed in, and an
 * unmasked one sets ES and B so that the next waiting instruction raises #MF.
 */
export function recordExceptions(fpu: FpuState, flags: number): void {
  let status = (fpu.status & ~FpuStatus.C1) | (flags & (FpuStatus.exceptions | FpuStatus.C1));
  if ((flags & ~fpu.control & FpuStatus.exceptions) !== 0) status |= FpuStatus.ES | FpuStatus.B;
  fpu.status = status;
}

/** True when the flags hold an unmasked IE, DE or ZE: the x87 then stores no result. */
export function suppressesResult(fpu: FpuState, flags: number): boolean {
  return (flags & ~fpu.control & (FpuStatus.IE | FpuStatus.DE | FpuStatus.ZE)) !== 0;
}

/**
 * Stack underflow (reading an empty register): IE and SF with C1 = 0.
 * Returns true when IE is masked, in which case the caller stores the QNaN
 * indefinite.
 */
export function stackUnderflow(fpu: FpuState): boolean {
  recordExceptions(fpu, FpuStatus.IE);
  fpu.status = (fpu.status | FpuStatus.SF) & ~FpuStatus.C1;
  return (fpu.control & FpuStatus.IE) !== 0;
}

/** Stack overflow (pushing onto a full register): IE and SF with C1 = 1; masked, the indefinite is pushed. */
export function stackOverflow(fpu: FpuState): void {
  recordExceptions(fpu, FpuStatus.IE);
  fpu.status |= FpuStatus.SF | FpuStatus.C1;
  if ((fpu.control & FpuStatus.IE) !== 0) {
    fpu.push();
    fpu.writeIndefinite(0);
  }
}

/** Pushes `value`, or handles stack overflow when the new ST(0) is in use. */
export function pushValue(fpu: FpuState, value: ExtendedBits): void {
  if (fpu.empty[(fpu.top - 1) & 7] === 0) {
    stackOverflow(fpu);
    return;
  }
  fpu.push();
  fpu.write(0, value.signExponent, value.high, value.low);
}

/** Reads an 80-bit value at `linear` into `into`. */
export function readExtendedMemory(cpu: Cpu, linear: number, into: ExtendedBits): void {
  const low = cpu.readLinear(linear, 4);
  const high = cpu.readLinear(linear + 4, 4);
  into.signExponent = cpu.readLinear(linear + 8, 2);
  into.high = high >>> 0;
  into.low = low >>> 0;
}

/** Writes an 80-bit value at `linear`, touching the last byte first so a fault leaves memory unchanged on a page boundary. */
export function writeExtendedMemory(cpu: Cpu, linear: number, signExponent: number, high: number, low: number): void {
  cpu.writeLinear(linear + 8, 2, signExponent, 0);
  cpu.writeLinear(linear, 8, low | 0, high | 0);
}
