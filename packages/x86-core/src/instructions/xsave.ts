import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { XCR0_SUPPORTED } from '../fpu/sse-state.js';
import { Cr0, Cr4, Reg, Vector } from '../state/registers.js';
import { memoryLinear } from './operands.js';
import { requirePrivilege0 } from './system.js';
import {
  applyX87Image, applyXmmImage, initializeX87, initializeXmm, readMxcsrImage, readX87Image, readXmmImage, storeMxcsrImage,
  storeX87Image, storeXmmImage,
} from './x87-fxsave.js';

/** Size of the standard-form XSAVE area for x87 and SSE: the 512-byte legacy region and the 64-byte header. */
export const XSAVE_AREA_SIZE = 576;
/** Offset of the XSAVE header (XSTATE_BV, then XCOMP_BV) in the area. */
const HEADER = 512;

/** #UD unless CR4.OSXSAVE enables the XSAVE feature set (the decoder already required CPUID.XSAVE). */
function requireXsaveEnabled(cpu: Cpu): void {
  if ((cpu.cr4 & Cr4.OSXSAVE) === 0) cpu.fault(Vector.UD);
}

/** XGETBV (0F 01 D0): EDX:EAX = XCR[ECX]; only XCR0 exists (XGETBV1 is not advertised). */
export function xgetbv(cpu: Cpu, _instruction: Instruction): void {
  requireXsaveEnabled(cpu);
  if (cpu.low[Reg.RCX] !== 0) cpu.fault(Vector.GP, 0);
  cpu.writeRegister(Reg.RAX, 4, cpu.sse.xcr0, 0);
  cpu.writeRegister(Reg.RDX, 4, 0, 0);
}

/**
 * XSETBV (0F 01 D1): XCR[ECX] = EDX:EAX at CPL 0 (the high halves of RCX, RAX,
 * RDX are ignored). #GP(0) for an XCR other than 0, for bits this core does not
 * support and for clearing bit 0 (x87 state is always enabled).
 */
export function xsetbv(cpu: Cpu, _instruction: Instruction): void {
  requireXsaveEnabled(cpu);
  requirePrivilege0(cpu);
  const value = cpu.low[Reg.RAX]!;
  if (cpu.low[Reg.RCX] !== 0 || cpu.low[Reg.RDX] !== 0 || (value & ~XCR0_SUPPORTED) !== 0 || (value & 1) === 0) cpu.fault(Vector.GP, 0);
  cpu.sse.xcr0 = value;
}

/**
 * XSAVE (`sub` 0), XRSTOR (`sub` 1) and XSAVEOPT (`sub` 2), standard form,
 * with their REX.W forms (64-bit x87 pointers, as FXSAVE64). The legacy region
 * has the FXSAVE layout; the header's XSTATE_BV is at 512 and XCOMP_BV at 520
 * (SDM vol. 1, 13.4, 13.7, 13.8). The requested-feature bitmap is
 * EDX:EAX AND XCR0. CR0.EM does not matter; CR0.TS gives #NM; the area must be
 * 64-byte aligned.
 *
 * The processor may report a component as in use (XINUSE) even in its initial
 * configuration, and this core always does: XSAVE writes every requested
 * component and sets its XSTATE_BV bit. XSAVEOPT is therefore XSAVE (skipping
 * nothing is always allowed), and an XRSTOR of what either wrote restores the
 * state exactly.
 */
export function xsave(cpu: Cpu, instruction: Instruction): void {
  requireXsaveEnabled(cpu);
  if ((cpu.cr0 & Cr0.TS) !== 0) cpu.fault(Vector.NM);
  const restore = instruction.sub === 1;
  const linear = memoryLinear(cpu, instruction, XSAVE_AREA_SIZE, !restore);
  if (linear % 64 !== 0) cpu.fault(Vector.GP, 0);
  const wide = instruction.operandSize === 8;
  // XCR0 has no bits above 31, so the requested-feature bitmap comes from EAX alone.
  const requested = cpu.low[Reg.RAX]! & cpu.sse.xcr0;
  if (restore) xrstor(cpu, linear, requested, wide);
  else storeArea(cpu, linear, requested, wide);
}

function storeArea(cpu: Cpu, linear: number, requested: number, wide: boolean): void {
  // XSTATE_BV is read and written back with the requested bits set; its other bits stay as they were.
  const stateBitmap = cpu.readLinear(linear + HEADER, 4);
  if ((requested & 1) !== 0) storeX87Image(cpu, linear, wide);
  // MXCSR belongs to SSE state but is saved for SSE or AVX (RFBM[1] or RFBM[2]).
  if ((requested & 0b110) !== 0) storeMxcsrImage(cpu, linear);
  if ((requested & 2) !== 0) storeXmmImage(cpu, linear);
  cpu.writeLinear(linear + HEADER, 4, stateBitmap | requested, 0);
}

function xrstor(cpu: Cpu, linear: number, requested: number, wide: boolean): void {
  const stateLow = cpu.readLinear(linear + HEADER, 4);
  const stateHigh = cpu.readLinear(linear + HEADER + 4, 4);
  // Standard form: XSTATE_BV within XCR0, and header bytes 8–23 (XCOMP_BV and the next quadword) zero.
  // A set XCOMP_BV[63] asks for the compacted form, which this core does not support: #GP as well.
  if ((stateLow & ~cpu.sse.xcr0) !== 0 || stateHigh !== 0) cpu.fault(Vector.GP, 0);
  for (let offset = 8; offset < 24; offset += 4) if (cpu.readLinear(linear + HEADER + offset, 4) !== 0) cpu.fault(Vector.GP, 0);
  const loadX87 = (requested & stateLow & 1) !== 0;
  const loadXmm = (requested & stateLow & 2) !== 0;
  // The standard form loads MXCSR whenever RFBM[1] or RFBM[2] is set, even with XSTATE_BV[1] clear.
  const loadMxcsr = (requested & 0b110) !== 0;
  // Read (and fault) before changing anything.
  const mxcsr = loadMxcsr ? readMxcsrImage(cpu, linear) : 0;
  if (loadXmm) readXmmImage(cpu, linear);
  if (loadX87) readX87Image(cpu, linear);
  if ((requested & 1) !== 0) {
    if (loadX87) applyX87Image(cpu, wide);
    else initializeX87(cpu);
  }
  if ((requested & 2) !== 0) {
    if (loadXmm) applyXmmImage(cpu);
    else initializeXmm(cpu);
  }
  if (loadMxcsr) cpu.sse.mxcsr = mxcsr;
}
