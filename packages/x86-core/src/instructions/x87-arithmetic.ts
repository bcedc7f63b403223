import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { FpuStatus, type FpuState } from '../fpu/fpu-state.js';
import { UNORDERED, X87Form, X87Operation } from '../fpu/x87-codes.js';
import {
  classifyExtended, type ExtendedBits, ExtendedClass, extendedAdd, extendedCompare, extendedDivide, extendedMultiply, extendedSubtract, FLOAT32, FLOAT64, ieeeToExtended, integerToExtended,
  x87ReportedFlags,
} from '../fpu/softfloat/index.js';
import { ARITHMETIC_FLAGS, Flag } from '../state/registers.js';
import { memoryLinear } from './operands.js';
import { enterX87, recordExceptions, stackUnderflow, suppressesResult } from './x87-support.js';


/** Reads a memory source of the given form into `into`; returns the conversion's exception flags. */
function readMemorySource(cpu: Cpu, instruction: Instruction, fpu: FpuState, form: number, into: ExtendedBits): number {
  const result = fpu.result;
  let flags = 0;
  switch (form) {
    case X87Form.float32:
      flags = ieeeToExtended(FLOAT32, 0, cpu.readLinear(memoryLinear(cpu, instruction, 4, false), 4) >>> 0, result);
      break;
    case X87Form.float64: {
      const low = cpu.readLinear(memoryLinear(cpu, instruction, 8, false), 8) >>> 0;
      flags = ieeeToExtended(FLOAT64, cpu.valueHigh >>> 0, low, result);
      break;
    }
    case X87Form.int32: {
      const value = cpu.readLinear(memoryLinear(cpu, instruction, 4, false), 4) | 0;
      integerToExtended(value >> 31, value, result);
      break;
    }
    default: {
      const value = (cpu.readLinear(memoryLinear(cpu, instruction, 2, false), 2) << 16) >> 16;
      integerToExtended(value >> 31, value, result);
      break;
    }
  }
  into.signExponent = result.signExponent;
  into.high = result.high;
  into.low = result.low;
  if ((flags & FpuStatus.IE) !== 0) {
    // A signaling NaN operand stays signaling (the conversion quieted it): with a quiet NaN in ST(0)
    // the processor returns the quiet one (SDM vol. 1, table 4-7), which the arithmetic decides.
    into.high = (into.high & ~0x40000000) >>> 0;
    flags &= ~FpuStatus.IE;
  }
  return flags;
}

/** Sets C3/C2/C0 from a compare result, clears C1, records IE/DE, and pops `pops` times unless an unmasked exception stopped it. */
function finishCompare(fpu: FpuState, flags: number, pops: number): void {
  fpu.status = (fpu.status & ~(FpuStatus.C0 | FpuStatus.C2 | FpuStatus.C3)) | (flags & (FpuStatus.C0 | FpuStatus.C2 | FpuStatus.C3));
  recordExceptions(fpu, flags & FpuStatus.exceptions);
  if (suppressesResult(fpu, flags)) return;
  for (let index = 0; index < pops; index++) fpu.pop();
}

/**
 * FADD/FMUL/FCOM/FCOMP/FSUB/FSUBR/FDIV/FDIVR in every form: m32, m64, m32int,
 * m16int, ST(0)←ST(0)∘ST(i), ST(i)←ST(i)∘ST(0) and its popping form.
 */
export function x87Arithmetic(cpu: Cpu, instruction: Instruction): void {
  const fpu = enterX87(cpu, instruction);
  const operation = instruction.sub & 7;
  const form = (instruction.sub >> 4) & 7;
  const destinationValue = fpu.first;
  const sourceValue = fpu.second;
  let destination = 0;
  let flags = 0;
  let pop = false;
  if (form < X87Form.stackTopFirst) {
    // Memory operands are read (and may fault) before the stack is looked at.
    flags = readMemorySource(cpu, instruction, fpu, form, sourceValue);
    if (fpu.isEmpty(0)) {
      underflowInto(fpu, operation, 0, 0);
      return;
    }
    fpu.read(0, destinationValue);
    // A NaN or unsupported ST(0) is reported before a denormal memory operand is looked at (as the host shows).
    const destinationClass = classifyExtended(destinationValue);
    if (destinationClass >= ExtendedClass.quietNaN) flags &= ~FpuStatus.DE;
  } else {
    const other = instruction.rmField & 7;
    destination = form === X87Form.stackTopFirst ? 0 : other;
    pop = form === X87Form.stackTopSecondPop;
    if (fpu.isEmpty(0) || fpu.isEmpty(other)) {
      underflowInto(fpu, operation, destination, pop ? 1 : 0);
      return;
    }
    fpu.read(destination, destinationValue);
    fpu.read(destination === 0 ? other : 0, sourceValue);
  }
  if (operation === X87Operation.compare || operation === X87Operation.comparePop) {
    const conversion = x87ReportedFlags(flags, fpu.control);
    if (suppressesResult(fpu, conversion)) {
      recordExceptions(fpu, conversion);
      return;
    }
    finishCompare(fpu, conversion | extendedCompare(destinationValue, sourceValue, false), operation === X87Operation.comparePop ? 1 : 0);
    return;
  }
  // A denormal single/double source with DE unmasked stops the instruction before it computes.
  if (suppressesResult(fpu, x87ReportedFlags(flags, fpu.control))) {
    recordExceptions(fpu, x87ReportedFlags(flags, fpu.control));
    return;
  }
  const result = fpu.result;
  const control = fpu.control;
  switch (operation) {
    case X87Operation.add: flags |= extendedAdd(destinationValue, sourceValue, control, result); break;
    case X87Operation.multiply: flags |= extendedMultiply(destinationValue, sourceValue, control, result); break;
    case X87Operation.subtract: flags |= extendedSubtract(destinationValue, sourceValue, control, result); break;
    case X87Operation.subtractReverse: flags |= extendedSubtract(sourceValue, destinationValue, control, result); break;
    case X87Operation.divide: flags |= extendedDivide(destinationValue, sourceValue, control, result); break;
    default: flags |= extendedDivide(sourceValue, destinationValue, control, result); break;
  }
  recordExceptions(fpu, flags);
  if (suppressesResult(fpu, flags)) return;
  fpu.write(destination, result.signExponent, result.high, result.low);
  if (pop) fpu.pop();
}

/** The masked stack-underflow response: indefinite into the destination (compares: unordered). */
function underflowInto(fpu: FpuState, operation: number, destination: number, pops: number): void {
  if (!stackUnderflow(fpu)) return;
  if (operation === X87Operation.compare || operation === X87Operation.comparePop) {
    fpu.status |= FpuStatus.C0 | FpuStatus.C2 | FpuStatus.C3;
    const total = pops + (operation === X87Operation.comparePop ? 1 : 0);
    for (let index = 0; index < total; index++) fpu.pop();
    return;
  }
  fpu.writeIndefinite(destination);
  for (let index = 0; index < pops; index++) fpu.pop();
}

/** FCOM/FCOMP/FUCOM/FUCOMP ST(i), FCOMPP/FUCOMPP (`sub` low bits: pops 0–2; UNORDERED for the U forms). */
export function x87CompareRegister(cpu: Cpu, instruction: Instruction): void {
  const fpu = enterX87(cpu, instruction);
  const pops = instruction.sub & 3;
  const other = pops === 2 ? 1 : instruction.rmField & 7;
  if (fpu.isEmpty(0) || fpu.isEmpty(other)) {
    if (!stackUnderflow(fpu)) return;
    fpu.status |= FpuStatus.C0 | FpuStatus.C2 | FpuStatus.C3;
    for (let index = 0; index < pops; index++) fpu.pop();
    return;
  }
  fpu.read(0, fpu.first);
  fpu.read(other, fpu.second);
  finishCompare(fpu, extendedCompare(fpu.first, fpu.second, (instruction.sub & UNORDERED) !== 0), pops);
}

/** FCOMI/FCOMIP/FUCOMI/FUCOMIP: ZF, PF, CF from the comparison; OF, SF, AF cleared (`sub` bit 0: pop). */
export function x87CompareFlags(cpu: Cpu, instruction: Instruction): void {
  const fpu = enterX87(cpu, instruction);
  const pop = (instruction.sub & 1) !== 0;
  const other = instruction.rmField & 7;
  let flags: number;
  if (fpu.isEmpty(0) || fpu.isEmpty(other)) {
    if (!stackUnderflow(fpu)) return;
    flags = FpuStatus.C0 | FpuStatus.C2 | FpuStatus.C3;
  } else {
    fpu.read(0, fpu.first);
    fpu.read(other, fpu.second);
    flags = extendedCompare(fpu.first, fpu.second, (instruction.sub & UNORDERED) !== 0);
    recordExceptions(fpu, flags & FpuStatus.exceptions);
    // With IE unmasked the flags are not updated (SDM vol. 2, FCOMI).
    if (suppressesResult(fpu, flags)) return;
  }
  fpu.status &= ~FpuStatus.C1;
  const eflags = ((flags & FpuStatus.C3) !== 0 ? Flag.ZF : 0) | ((flags & FpuStatus.C2) !== 0 ? Flag.PF : 0) | ((flags & FpuStatus.C0) !== 0 ? Flag.CF : 0);
  cpu.flags.setAll((cpu.flags.get() & ~ARITHMETIC_FLAGS) | eflags);
  if (pop) fpu.pop();
}
