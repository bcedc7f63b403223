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
  const wide = instruction.operandSize === 8;
  const withSse = (cpu.cr4 & Cr4.OSFXSR) !== 0;
  if (!restore) {
    storeX87Image(cpu, linear, wide);
    if (withSse) {
      storeMxcsrImage(cpu, linear);
      storeXmmImage(cpu, linear);
    }
    return;
  }
  const mxcsr = withSse ? readMxcsrImage(cpu, linear) : 0;
  if (withSse) readXmmImage(cpu, linear);
  readX87Image(cpu, linear);
  applyX87Image(cpu, wide);
  if (withSse) {
    cpu.sse.mxcsr = mxcsr;
    applyXmmImage(cpu);
  }
}

/** XMM registers in an image: XMM0–XMM15 in 64-bit mode, XMM0–XMM7 otherwise (as 32-bit lanes). */
function xmmLaneCount(cpu: Cpu): number {
  return cpu.codeMode === CodeMode.Bits64 ? 64 : 32;
}

/** Writes the x87 part of an FXSAVE image (bytes 0–23 except MXCSR, ST(0)–ST(7) from 32); 64-bit pointers when `wide`. */
export function storeX87Image(cpu: Cpu, linear: number, wide: boolean): void {
  const fpu = cpu.fpu;
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
}

/** Writes MXCSR and MXCSR_MASK (bytes 24–31 of the image). */
export function storeMxcsrImage(cpu: Cpu, linear: number): void {
  cpu.writeLinear(linear + 24, 4, cpu.sse.mxcsr, 0);
  cpu.writeLinear(linear + 28, 4, MXCSR_MASK, 0);
}

/** Writes the XMM registers from byte 160 of the image. */
export function storeXmmImage(cpu: Cpu, linear: number): void {
  const xmm = cpu.sse.xmm;
  const count = xmmLaneCount(cpu);
  for (let lane = 0; lane < count; lane += 2) cpu.writeLinear(linear + 160 + lane * 4, 8, xmm[lane]! | 0, xmm[lane + 1]! | 0);
}

/** Reads MXCSR from the image: #GP(0) for reserved bits, before anything has changed. */
export function readMxcsrImage(cpu: Cpu, linear: number): number {
  const mxcsr = cpu.readLinear(linear + 24, 4) >>> 0;
  if ((mxcsr & ~MXCSR_MASK) !== 0) cpu.fault(Vector.GP, 0);
  return mxcsr;
}

/** Reads the image's XMM registers into `sse.restoreScratch` (a fault part-way must change nothing). */
export function readXmmImage(cpu: Cpu, linear: number): void {
  const scratch = cpu.sse.restoreScratch;
  const count = xmmLaneCount(cpu);
  for (let lane = 0; lane < count; lane++) scratch[lane] = cpu.readLinear(linear + 160 + lane * 4, 4);
}

/** Commits what `readXmmImage` read. */
export function applyXmmImage(cpu: Cpu): void {
  const scratch = cpu.sse.restoreScratch;
  const count = xmmLaneCount(cpu);
  for (let lane = 0; lane < count; lane++) cpu.sse.xmm[lane] = scratch[lane]!;
}

/** XRSTOR's SSE initialisation: the XMM registers of the current mode become zero (MXCSR is separate). */
export function initializeXmm(cpu: Cpu): void {
  cpu.sse.xmm.fill(0, 0, xmmLaneCount(cpu));
}

/** Reads the x87 part of the image into `fpu.restoreScratch` without changing anything. */
export function readX87Image(cpu: Cpu, linear: number): void {
  const scratch = cpu.fpu.restoreScratch;
  for (let index = 0; index < 8; index++) {
    const at = linear + 32 + index * 16;
    scratch[index * 3] = cpu.readLinear(at, 4);
    scratch[index * 3 + 1] = cpu.readLinear(at + 4, 4);
    scratch[index * 3 + 2] = cpu.readLinear(at + 8, 2);
  }
  scratch[24] = cpu.readLinear(linear, 2);
  scratch[25] = cpu.readLinear(linear + 2, 2);
  scratch[26] = cpu.readLinear(linear + 4, 1);
  scratch[27] = cpu.readLinear(linear + 6, 2) & 0x7ff;
  for (let word = 0; word < 4; word++) scratch[28 + word] = cpu.readLinear(linear + 8 + word * 4, 4);
}

/** Commits what `readX87Image` read; `wide` takes the pointers as 64-bit offsets (REX.W forms). */
export function applyX87Image(cpu: Cpu, wide: boolean): void {
  const fpu = cpu.fpu;
  const scratch = fpu.restoreScratch;
  fpu.control = normalizeControlWord(scratch[24]!);
  fpu.setStatusWord(scratch[25]!);
  if ((fpu.status & ~fpu.control & FpuStatus.exceptions) !== 0) fpu.status |= FpuStatus.ES | FpuStatus.B;
  else fpu.status &= ~(FpuStatus.ES | FpuStatus.B);
  releaseErrorSignal(cpu);
  const tags = scratch[26]!;
  for (let index = 0; index < 8; index++) {
    const register = (fpu.top + index) & 7;
    fpu.low[register] = scratch[index * 3]!;
    fpu.high[register] = scratch[index * 3 + 1]!;
    fpu.signExponent[register] = scratch[index * 3 + 2]!;
    fpu.empty[index] = (tags >> index) & 1 ? 0 : 1;
  }
  fpu.opcode = scratch[27]!;
  const instructionLow = scratch[28]! >>> 0;
  const instructionHigh = scratch[29]! >>> 0;
  const dataLow = scratch[30]! >>> 0;
  const dataHigh = scratch[31]! >>> 0;
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

/**
 * XRSTOR's x87 initialisation (SDM vol. 1, 13.6): FCW 0x037F, FSW 0, every
 * register empty and zero, pointers and opcode zero.
 */
export function initializeX87(cpu: Cpu): void {
  const fpu = cpu.fpu;
  fpu.initialize();
  fpu.signExponent.fill(0);
  fpu.high.fill(0);
  fpu.low.fill(0);
  releaseErrorSignal(cpu);
}
