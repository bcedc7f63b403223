import type { CpuCore as Cpu } from '../cpu-core.js';
import { type Instruction, OperandKind } from '../decoder/instruction.js';
import { EntryFlag } from '../decoder/opcode-entry.js';
import { FpuStatus, type FpuState } from '../fpu/fpu-state.js';
import { MEMORY_LANES, RESULT_LANES, type SseState } from '../fpu/sse-state.js';
import { sseReportedFlags } from '../fpu/softfloat/index.js';
import { Cr0, Cr4, Vector } from '../state/registers.js';
import { memoryLinear } from './operands.js';

/*
 * What every SSE and MMX instruction shares: the CR0/CR4 checks, reading and
 * writing XMM and MMX operands and their memory forms, and raising SIMD
 * floating-point exceptions. Handlers work on `cpu.sse.lanes` by lane index:
 * register r is lanes 4r…4r+3, a memory source is read into MEMORY_LANES.
 */

/**
 * The checks of a legacy SSE instruction, as each instruction's exception
 * table in the SDM lists them: #UD when CR0.EM = 1 or CR4.OSFXSR = 0, then
 * #NM when CR0.TS = 1.
 */
export function enterSse(cpu: Cpu): SseState {
  const cr0 = cpu.cr0;
  if ((cr0 & Cr0.EM) !== 0 || (cpu.cr4 & Cr4.OSFXSR) === 0) cpu.fault(Vector.UD);
  if ((cr0 & Cr0.TS) !== 0) cpu.fault(Vector.NM);
  return cpu.sse;
}

/**
 * The checks of an MMX instruction: #UD when CR0.EM = 1, #NM when CR0.TS = 1,
 * #MF for a pending unmasked x87 exception (with CR0.NE, as the x87 does).
 * Then the x87 enters MMX state: TOP = 0 and every register tagged valid
 * (EMMS, which empties the tags instead, calls this first as well).
 */
export function enterMmx(cpu: Cpu): FpuState {
  const cr0 = cpu.cr0;
  if ((cr0 & Cr0.EM) !== 0) cpu.fault(Vector.UD);
  if ((cr0 & Cr0.TS) !== 0) cpu.fault(Vector.NM);
  const fpu = cpu.fpu;
  if ((fpu.status & FpuStatus.ES) !== 0 && (cr0 & Cr0.NE) !== 0) cpu.fault(Vector.MF);
  fpu.top = 0;
  fpu.empty.fill(0);
  return fpu;
}

/** MMX register `register` (0–7): the low 32 bits, the high 32 bits in `cpu.valueHigh`. It is the significand of physical x87 register R(register). */
export function readMmx(cpu: Cpu, register: number): number {
  cpu.valueHigh = cpu.fpu.high[register]! | 0;
  return cpu.fpu.low[register]! | 0;
}

/** Writes MMX register `register`: the significand of R(register), whose sign/exponent field becomes 0xFFFF. */
export function writeMmx(cpu: Cpu, register: number, low: number, high: number): void {
  const fpu = cpu.fpu;
  fpu.low[register] = low;
  fpu.high[register] = high;
  fpu.signExponent[register] = 0xffff;
  fpu.empty[register] = 0;
}

/** The second operand of an MMX instruction (Q: mm or m64): low half returned, high half in `cpu.valueHigh`. */
export function readMmxSource(cpu: Cpu, instruction: Instruction): number {
  if (instruction.kind1 === OperandKind.Register) return readMmx(cpu, instruction.register1);
  const linear = memoryLinear(cpu, instruction, 8, false);
  return cpu.readLinear(linear, 8);
}

/**
 * The lane index of the second (source) operand: register r's lanes 4r, or
 * MEMORY_LANES after reading `size` bytes (4, 8 or 16) of memory there (the
 * lanes past `size` are zeroed). A 16-byte read of an `Aligned` entry raises
 * #GP(0) when the address is not 16-byte aligned.
 */
export function readXmmSource(cpu: Cpu, instruction: Instruction, size: number): number {
  if (instruction.kind1 === OperandKind.Register) return instruction.register1 * 4;
  readXmmMemory(cpu, instruction, size);
  return MEMORY_LANES;
}

/** Reads `size` bytes (4, 8 or 16) of the memory operand into MEMORY_LANES (zeroing the rest). */
export function readXmmMemory(cpu: Cpu, instruction: Instruction, size: number): void {
  const linear = xmmMemoryLinear(cpu, instruction, size, false);
  const lanes = cpu.sse.lanes;
  if (size === 4) {
    lanes[MEMORY_LANES] = cpu.readLinear(linear, 4);
    lanes[MEMORY_LANES + 1] = 0;
  } else {
    lanes[MEMORY_LANES] = cpu.readLinear(linear, 8);
    lanes[MEMORY_LANES + 1] = cpu.valueHigh;
  }
  if (size === 16) {
    lanes[MEMORY_LANES + 2] = cpu.readLinear(linear + 8, 8);
    lanes[MEMORY_LANES + 3] = cpu.valueHigh;
  } else {
    lanes[MEMORY_LANES + 2] = 0;
    lanes[MEMORY_LANES + 3] = 0;
  }
}

/** Writes `size` bytes (4, 8 or 16) from `lanes[from…]` to the memory operand; nothing is written if any byte would fault. */
export function writeXmmMemory(cpu: Cpu, instruction: Instruction, from: number, size: number): void {
  const linear = xmmMemoryLinear(cpu, instruction, size, true);
  const lanes = cpu.sse.lanes;
  if (size === 4) {
    cpu.writeLinear(linear, 4, lanes[from]! | 0, 0);
    return;
  }
  if (size === 16) {
    cpu.mmu.probeWrite(linear, 16);
    cpu.writeLinear(linear + 8, 8, lanes[from + 2]! | 0, lanes[from + 3]! | 0);
  }
  cpu.writeLinear(linear, 8, lanes[from]! | 0, lanes[from + 1]! | 0);
}

/** The checked linear address of a SIMD memory operand; 16-byte accesses of `Aligned` entries must be 16-byte aligned. */
export function xmmMemoryLinear(cpu: Cpu, instruction: Instruction, size: number, write: boolean): number {
  const linear = memoryLinear(cpu, instruction, size, write);
  if (size === 16 && (instruction.entry.flags & EntryFlag.Aligned) !== 0 && linear % 16 !== 0) cpu.fault(Vector.GP, 0);
  return linear;
}

/** Copies the four lanes at `from` to the four at `to` (any slots of `lanes`). */
export function copyLanes(lanes: Uint32Array, to: number, from: number): void {
  lanes[to] = lanes[from]!;
  lanes[to + 1] = lanes[from + 1]!;
  lanes[to + 2] = lanes[from + 2]!;
  lanes[to + 3] = lanes[from + 3]!;
}

/** Copies `count` lanes of RESULT_LANES to `to` (a result is committed after the exception check). */
export function commitResult(lanes: Uint32Array, to: number, count: number): void {
  for (let lane = 0; lane < count; lane++) lanes[to + lane] = lanes[RESULT_LANES + lane]!;
}

/**
 * Records SIMD floating-point exception flags (softfloat's MXCSR layout, bits 0–5, ORed
 * over the lanes of a packed operation) and traps when one is unmasked: an
 * unmasked IE, DE or ZE in any lane reports only those (the operation stops
 * before computing), otherwise every flag is reported. A trap is #XM with
 * CR4.OSXMMEXCPT set, else #UD; the destination is then left unchanged, so
 * callers commit results only after this returns.
 */
export function recordSimdExceptions(cpu: Cpu, flags: number): void {
  const sse = cpu.sse;
  const reported = sseReportedFlags(flags & 0x3f, sse.mxcsr);
  sse.mxcsr |= reported;
  if ((reported & ~(sse.mxcsr >> 7) & 0x3f) !== 0) cpu.fault((cpu.cr4 & Cr4.OSXMMEXCPT) !== 0 ? Vector.XM : Vector.UD);
}
