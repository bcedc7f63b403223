import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { FpuStatus } from '../fpu/fpu-state.js';
import { X87Control } from '../fpu/x87-codes.js';
import { Cr0, Reg, Vector } from '../state/registers.js';
import { memoryLinear } from './operands.js';
import { enterX87, releaseErrorSignal, signalPendingError } from './x87-support.js';


/** Bit 6 of the control word reads as one; bits 13–15 and 7 read as zero (SDM vol. 1, figure 8-6). */
export function normalizeControlWord(value: number): number {
  return (value & 0x1f3f) | 0x40;
}

/** FWAIT/WAIT: #NM only when CR0.MP and CR0.TS are both set, then a pending unmasked exception (#MF, or FERR# with CR0.NE clear). */
export function x87Wait(cpu: Cpu, _instruction: Instruction): void {
  if ((cpu.cr0 & (Cr0.TS | Cr0.MP)) === (Cr0.TS | Cr0.MP)) cpu.fault(Vector.NM);
  if ((cpu.fpu.status & FpuStatus.ES) !== 0) signalPendingError(cpu);
}

/** FNINIT, FNCLEX, FNSTSW, FNSTCW, FLDCW, FNOP, FINCSTP, FDECSTP, FFREE. */
export function x87Control(cpu: Cpu, instruction: Instruction): void {
  control(cpu, instruction);
  releaseErrorSignal(cpu);
}

function control(cpu: Cpu, instruction: Instruction): void {
  const fpu = enterX87(cpu, instruction);
  switch (instruction.sub & 0xff) {
    case X87Control.init:
      fpu.initialize();
      return;
    case X87Control.clearExceptions:
      fpu.status &= ~(FpuStatus.exceptions | FpuStatus.SF | FpuStatus.ES | FpuStatus.B);
      return;
    case X87Control.storeStatusMemory:
      cpu.writeLinear(memoryLinear(cpu, instruction, 2, true), 2, fpu.statusWord(), 0);
      return;
    case X87Control.storeStatusAx:
      cpu.writeRegister(Reg.RAX, 2, fpu.statusWord(), 0);
      return;
    case X87Control.storeControl:
      cpu.writeLinear(memoryLinear(cpu, instruction, 2, true), 2, fpu.control, 0);
      return;
    case X87Control.loadControl: {
      fpu.control = normalizeControlWord(cpu.readLinear(memoryLinear(cpu, instruction, 2, false), 2));
      // Unmasking a flag that is already set makes it pending (ES/B); masking every set flag clears them.
      if ((fpu.status & ~fpu.control & FpuStatus.exceptions) !== 0) fpu.status |= FpuStatus.ES | FpuStatus.B;
      else fpu.status &= ~(FpuStatus.ES | FpuStatus.B);
      return;
    }
    case X87Control.nop:
      return;
    case X87Control.incrementTop:
      fpu.top = (fpu.top + 1) & 7;
      fpu.status &= ~FpuStatus.C1;
      return;
    case X87Control.decrementTop:
      fpu.top = (fpu.top - 1) & 7;
      fpu.status &= ~FpuStatus.C1;
      return;
    default:
      // FFREE ST(i): only the tag changes.
      fpu.empty[fpu.physical(instruction.rmField & 7)] = 1;
      return;
  }
}

