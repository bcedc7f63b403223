import type { CpuCore as Cpu } from '../cpu-core.js';
import { type Instruction, OperandKind } from '../decoder/instruction.js';
import { HALF_SOURCE, MMX_FORM, SimdMove, SimdShuffle } from '../decoder/table-simd-integer.js';
import { MEMORY_LANES } from '../fpu/sse-state.js';
import { BINARY_OPERATION_LIST, shiftCount, shiftLanes } from '../simd/integer-lanes.js';
import { alignRight, shiftBytes, shuffleDwords, shuffleWords } from '../simd/integer-shuffle.js';
import type { SimdValue } from '../simd/simd-value.js';
import { memoryLinear, readValue, writeValue } from './operands.js';
import { enterMmx, enterSse, readXmmMemory, writeMmx } from './simd-support.js';

/*
 * The integer MMX and SSE2/SSSE3 instructions (Intel SDM vol. 2). Operands
 * are copied into the per-CPU `SimdValue`s of `cpu.sse.vectors`, computed on
 * by `src/simd`, and the result copied back, so one handler serves the MMX
 * (8-byte, `MMX_FORM` in `sub`) and XMM (16-byte) forms.
 */

/** The common checks of the form, and its operand length in bytes. */
export function enterSimdInteger(cpu: Cpu, mmx: boolean): number {
  if (mmx) {
    enterMmx(cpu);
    return 8;
  }
  enterSse(cpu);
  return 16;
}

/** Loads MMX or XMM register `register` into `value`. */
export function loadRegister(cpu: Cpu, register: number, value: SimdValue, mmx: boolean): void {
  const to = value.dwords;
  if (mmx) {
    to[0] = cpu.fpu.low[register]!;
    to[1] = cpu.fpu.high[register]!;
    return;
  }
  const lanes = cpu.sse.lanes;
  const from = register * 4;
  to[0] = lanes[from]!;
  to[1] = lanes[from + 1]!;
  to[2] = lanes[from + 2]!;
  to[3] = lanes[from + 3]!;
}

/** Stores `value` into MMX register `register` (its low 8 bytes) or XMM register `register`. */
export function storeRegister(cpu: Cpu, register: number, value: SimdValue, mmx: boolean): void {
  const from = value.dwords;
  if (mmx) {
    writeMmx(cpu, register, from[0]!, from[1]!);
    return;
  }
  const lanes = cpu.sse.lanes;
  const to = register * 4;
  lanes[to] = from[0]!;
  lanes[to + 1] = from[1]!;
  lanes[to + 2] = from[2]!;
  lanes[to + 3] = from[3]!;
}

/**
 * Loads operand 1 (Q or W): a register, or `size` bytes (2, 4, 8 or 16) of
 * memory with the rest of `value` zeroed. A 16-byte read of an `Aligned`
 * entry checks the alignment.
 */
export function loadSource(cpu: Cpu, instruction: Instruction, value: SimdValue, mmx: boolean, size: number): void {
  if (instruction.kind1 === OperandKind.Register) {
    loadRegister(cpu, instruction.register1, value, mmx);
    return;
  }
  const to = value.dwords;
  if (size === 2) {
    to[0] = cpu.readLinear(memoryLinear(cpu, instruction, 2, false), 2);
    to[1] = 0;
    to[2] = 0;
    to[3] = 0;
    return;
  }
  readXmmMemory(cpu, instruction, size);
  const lanes = cpu.sse.lanes;
  to[0] = lanes[MEMORY_LANES]!;
  to[1] = lanes[MEMORY_LANES + 1]!;
  to[2] = lanes[MEMORY_LANES + 2]!;
  to[3] = lanes[MEMORY_LANES + 3]!;
}

/** The lane operations (PADD…PXOR, PCMP…, PACK…, PUNPCK…, PSHUFB, PHADD…): `sub` is the operation's index. */
export function simdInteger(cpu: Cpu, instruction: Instruction): void {
  const sub = instruction.sub;
  const mmx = (sub & MMX_FORM) !== 0;
  const length = enterSimdInteger(cpu, mmx);
  const vectors = cpu.sse.vectors;
  loadSource(cpu, instruction, vectors.source, mmx, (sub & HALF_SOURCE) !== 0 ? 4 : length);
  loadRegister(cpu, instruction.register0, vectors.destination, mmx);
  BINARY_OPERATION_LIST[sub & 0xff]!(vectors.result, vectors.destination, vectors.source, length);
  storeRegister(cpu, instruction.register0, vectors.result, mmx);
}

/** PSLL/PSRL/PSRA by a register or memory count (its whole low quadword) or by an immediate; `sub` = kind | lane bytes << 4. */
export function simdShift(cpu: Cpu, instruction: Instruction): void {
  const sub = instruction.sub;
  const mmx = (sub & MMX_FORM) !== 0;
  const length = enterSimdInteger(cpu, mmx);
  const vectors = cpu.sse.vectors;
  let count: number;
  if (instruction.kind1 === OperandKind.Immediate) count = instruction.immediate & 0xff;
  else {
    loadSource(cpu, instruction, vectors.source, mmx, length);
    count = shiftCount(vectors.source);
  }
  loadRegister(cpu, instruction.register0, vectors.destination, mmx);
  shiftLanes(vectors.result, vectors.destination, sub & 3, (sub >>> 4) & 15, count, length);
  storeRegister(cpu, instruction.register0, vectors.result, mmx);
}

/** PSHUFW, PSHUFD, PSHUFHW, PSHUFLW, PALIGNR, PSLLDQ and PSRLDQ (see `SimdShuffle`). */
export function simdShuffle(cpu: Cpu, instruction: Instruction): void {
  const sub = instruction.sub;
  const mmx = (sub & MMX_FORM) !== 0;
  const length = enterSimdInteger(cpu, mmx);
  const { source, destination, result } = cpu.sse.vectors;
  const control = instruction.immediate & 0xff;
  const form = sub & 15;
  if (form === SimdShuffle.shiftBytesLeft || form === SimdShuffle.shiftBytesRight) {
    loadRegister(cpu, instruction.register0, destination, false);
    shiftBytes(result, destination, control, form === SimdShuffle.shiftBytesLeft);
  } else {
    loadSource(cpu, instruction, source, mmx, length);
    switch (form) {
      case SimdShuffle.dwords: shuffleDwords(result, source, control); break;
      case SimdShuffle.highWords: shuffleWords(result, source, control, 4, 16); break;
      case SimdShuffle.words: case SimdShuffle.lowWords: shuffleWords(result, source, control, 0, length); break;
      default:
        loadRegister(cpu, instruction.register0, destination, mmx);
        alignRight(result, destination, source, control, length);
    }
  }
  storeRegister(cpu, instruction.register0, result, mmx);
}

/** EMMS: every x87 register empty again (after the MMX checks and transition). */
export function emms(cpu: Cpu, _instruction: Instruction): void {
  enterMmx(cpu);
  cpu.fpu.empty.fill(1);
}

/** MOVD, MOVQ (all forms), MOVNTQ, MOVQ2DQ and MOVDQ2Q (see `SimdMove`). */
export function simdMove(cpu: Cpu, instruction: Instruction): void {
  const sub = instruction.sub;
  const mmx = (sub & MMX_FORM) !== 0;
  const operation = sub & 15;
  if (operation === SimdMove.mmxToXmm || operation === SimdMove.xmmToMmx) {
    enterSse(cpu);
    enterMmx(cpu);
  } else enterSimdInteger(cpu, mmx);
  const lanes = cpu.sse.lanes;
  const value = cpu.sse.vectors.source;
  switch (operation) {
    case SimdMove.fromGeneral: {
      const size = instruction.operandSize;
      const linear = instruction.kind1 === OperandKind.Memory ? memoryLinear(cpu, instruction, size, false) : 0;
      value.clear();
      value.dwords[0] = readValue(cpu, instruction, instruction.kind1, instruction.register1, size, linear);
      if (size === 8) value.dwords[1] = cpu.valueHigh;
      storeRegister(cpu, instruction.register0, value, mmx);
      return;
    }
    case SimdMove.toGeneral: {
      const size = instruction.operandSize;
      loadRegister(cpu, instruction.register1, value, mmx);
      const linear = instruction.kind0 === OperandKind.Memory ? memoryLinear(cpu, instruction, size, true) : 0;
      writeValue(cpu, instruction.kind0, instruction.register0, size, linear, value.dwords[0]! | 0, value.dwords[1]! | 0);
      return;
    }
    case SimdMove.mmx:
    case SimdMove.storeQuadword:
      if (instruction.kind0 === OperandKind.Memory) {
        loadRegister(cpu, instruction.register1, value, mmx);
        cpu.writeLinear(memoryLinear(cpu, instruction, 8, true), 8, value.dwords[0]! | 0, value.dwords[1]! | 0);
        return;
      }
      loadSource(cpu, instruction, value, mmx, 8);
      break;
    case SimdMove.loadQuadword:
      loadSource(cpu, instruction, value, false, 8);
      break;
    case SimdMove.mmxToXmm:
      loadRegister(cpu, instruction.register1, value, true);
      break;
    default:
      // MOVDQ2Q: the low quadword of the XMM register.
      writeMmx(cpu, instruction.register0, lanes[instruction.register1 * 4]!, lanes[instruction.register1 * 4 + 1]!);
      return;
  }
  // Quadword moves into an XMM register clear its high quadword.
  value.dwords[2] = 0;
  value.dwords[3] = 0;
  storeRegister(cpu, instruction.register0, value, mmx);
}
