import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { FpuStatus } from '../fpu/fpu-state.js';
import { CodeMode } from '../decoder/instruction.js';
import { MXCSR_MASK } from '../fpu/sse-state.js';
import { Cr0, Cr4, Vector } from '../state/registers.js';
import { memoryLinear } from './operands.js';
import { normalizeControlWord } from './x87-control.js';
import { releaseErrorSignal } from './x87-support.js';

/**
 * FXSAVE (`sub` 0) and FXRSTOR (`sub` 1): the 512-byte image (SDM vol. 1,
 * table 10-2): FCW, FSW, the abridged tag byte, FOP, FIP/FCS, FDP/FDS (64-bit
 * pointers with REX.W), MXCSR at 24, MXCSR_MASK at 28, ST(0)…ST(7) in
 * 16-byte slots from 32 and XMM0–XMM7 (XMM0–XMM15 in 64-bit mode) from 160.
 * MXCSR and the XMM registers are saved and restored only with CR4.OSFXSR
 * set (the SDM leaves it to the implementation; QEMU and Intel skip them);
 * FXRSTOR of an MXCSR with reserved bits set raises #GP(0) and changes nothing.
 */
export function fxsave(cpu: Cpu, instruction: Instruction): void {
  // FXSAVE/FXRSTOR check EM and TS but never wait for pending x87 exceptions.
  if ((cpu.cr0 & (Cr0.EM | Cr0.TS)) !== 0) cpu.fault(Vector.NM);
  const restore = instruction.sub === 1;
  const linear = memoryLinear(cpu, instruction, 512, !restore);
  if (linear % 16 !== 0) cpu.fault(Vector.GP, 0);
  const fpu = cpu.fpu;
  const wide = instruction.operandSize === 8;
  if (!restore) {
    cpu.writeLinear(linear, 2, fpu.control, 0);
    cpu.writeLinear(linear + 2, 2, fpu.statusWord(), 0);
    cpu.writeLinear(linear + 4, 2, fpu.abridgedTag(), 0);
    cpu.writeLinear(linear + 6, 2, fpu.opcode, 0);
    if (wide) {
      cpu.writeLinear(linear + 8, 8, fpu.instructionOffset | 0, Math.floor(fpu.instructionOffset / 4294967296) | 0);
      cpu.writeLinear(linear + 16, 8, fpu.dataOffset | 0, Math.floor(fpu.dataOffset / 4294967296) | 0);
    } else {
      cpu.writeLinear(linear + 8, 4, fpu.instructionOffset | 0, 0);
      cpu.writeLinear(linear + 12, 4, fpu.instructionSelector, 0);
      cpu.writeLinear(linear + 16, 4, fpu.dataOffset | 0, 0);
      cpu.writeLinear(linear + 20, 4, fpu.dataSelector, 0);
    }
    for (let index = 0; index < 8; index++) {
      const register = fpu.physical(index);
      const at = linear + 32 + index * 16;
      cpu.writeLinear(at, 8, fpu.low[register]! | 0, fpu.high[register]! | 0);
      cpu.writeLinear(at + 8, 8, fpu.signExponent[register]!, 0);
    }
    if ((cpu.cr4 & Cr4.OSFXSR) !== 0) {
      const sse = cpu.sse;
      cpu.writeLinear(linear + 24, 4, sse.mxcsr, 0);
      cpu.writeLinear(linear + 28, 4, MXCSR_MASK, 0);
      const count = cpu.codeMode === CodeMode.Bits64 ? 64 : 32;
      for (let lane = 0; lane < count; lane += 2) cpu.writeLinear(linear + 160 + lane * 4, 8, sse.xmm[lane]! | 0, sse.xmm[lane + 1]! | 0);
    }
    return;
  }
  const withSse = (cpu.cr4 & Cr4.OSFXSR) !== 0;
  const mxcsr = withSse ? cpu.readLinear(linear + 24, 4) >>> 0 : 0;
  if ((mxcsr & ~MXCSR_MASK) !== 0) cpu.fault(Vector.GP, 0);
  // The XMM image goes to a scratch copy first: a fault part-way must change nothing.
  const xmmCount = withSse ? (cpu.codeMode === CodeMode.Bits64 ? 64 : 32) : 0;
  const xmmScratch = cpu.sse.restoreScratch;
  for (let lane = 0; lane < xmmCount; lane++) xmmScratch[lane] = cpu.readLinear(linear + 160 + lane * 4, 4);
  // Read everything (registers into scratch) before changing anything.
  const control = cpu.readLinear(linear, 2);
  const status = cpu.readLinear(linear + 2, 2);
  const tags = cpu.readLinear(linear + 4, 1);
  const opcode = cpu.readLinear(linear + 6, 2) & 0x7ff;
  const instructionLow = cpu.readLinear(linear + 8, 4) >>> 0;
  const instructionHigh = cpu.readLinear(linear + 12, 4) >>> 0;
  const dataLow = cpu.readLinear(linear + 16, 4) >>> 0;
  const dataHigh = cpu.readLinear(linear + 20, 4) >>> 0;
  const scratch = fpu.restoreScratch;
  for (let index = 0; index < 8; index++) {
    const at = linear + 32 + index * 16;
    scratch[index * 3] = cpu.readLinear(at, 4);
    scratch[index * 3 + 1] = cpu.readLinear(at + 4, 4);
    scratch[index * 3 + 2] = cpu.readLinear(at + 8, 2);
  }
  fpu.control = normalizeControlWord(control);
  fpu.setStatusWord(status);
  if ((fpu.status & ~fpu.control & FpuStatus.exceptions) !== 0) fpu.status |= FpuStatus.ES | FpuStatus.B;
  else fpu.status &= ~(FpuStatus.ES | FpuStatus.B);
  releaseErrorSignal(cpu);
  for (let index = 0; index < 8; index++) {
    const register = (fpu.top + index) & 7;
    fpu.low[register] = scratch[index * 3]!;
    fpu.high[register] = scratch[index * 3 + 1]!;
    fpu.signExponent[register] = scratch[index * 3 + 2]!;
    fpu.empty[index] = (tags >> index) & 1 ? 0 : 1;
  }
  fpu.opcode = opcode;
  if (withSse) {
    cpu.sse.mxcsr = mxcsr;
    for (let lane = 0; lane < xmmCount; lane++) cpu.sse.xmm[lane] = xmmScratch[lane]!;
  }
  if (wide) {
    fpu.instructionOffset = (instructionHigh | 0) * 4294967296 + instructionLow;
    fpu.dataOffset = (dataHigh | 0) * 4294967296 + dataLow;
  } else {
    fpu.instructionOffset = instructionLow;
    fpu.instructionSelector = instructionHigh & 0xffff;
    fpu.dataOffset = dataLow;
    fpu.dataSelector = dataHigh & 0xffff;
  }
}
