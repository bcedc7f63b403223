import type { CpuCore as Cpu } from '../cpu-core.js';
import { type Instruction, OperandKind } from '../decoder/instruction.js';
import { Logic, SseForm, Shuffle } from '../fpu/sse-codes.js';
import { RESULT_LANES } from '../fpu/sse-state.js';
import { copyLanes, enterSse, readXmmSource } from './simd-support.js';
import { memoryLinear } from './operands.js';

/*
 * Bitwise operations, element rearrangements, blends and sign masks of the
 * floating-point SSE instructions: no arithmetic, no exceptions.
 */

/** ANDPS/ANDNPS/ORPS/XORPS and their PD forms (`sub` a Logic operation). */
export function sseLogic(cpu: Cpu, instruction: Instruction): void {
  const lanes = enterSse(cpu).lanes;
  const from = readXmmSource(cpu, instruction, 16);
  const to = instruction.register0 * 4;
  const operation = instruction.sub;
  for (let lane = 0; lane < 4; lane++) {
    const a = lanes[to + lane]!;
    const b = lanes[from + lane]!;
    lanes[to + lane] = operation === Logic.and ? a & b : operation === Logic.andNot ? ~a & b : operation === Logic.or ? a | b : a ^ b;
  }
}

/**
 * UNPCKLPS/UNPCKHPS/UNPCKLPD/UNPCKHPD, SHUFPS/SHUFPD, BLENDPS/BLENDPD,
 * BLENDVPS/BLENDVPD (XMM0's sign bits select) and INSERTPS (`sub` a Shuffle).
 * The result is built in RESULT_LANES because source and destination may be one register.
 */
export function sseShuffle(cpu: Cpu, instruction: Instruction): void {
  const lanes = enterSse(cpu).lanes;
  const operation = instruction.sub;
  const from = readXmmSource(cpu, instruction, operation === Shuffle.insertSingle ? 4 : 16);
  const to = instruction.register0 * 4;
  const r = RESULT_LANES;
  const select = instruction.immediate;
  switch (operation) {
    case Shuffle.unpackLowSingle:
      lanes[r] = lanes[to]!; lanes[r + 1] = lanes[from]!; lanes[r + 2] = lanes[to + 1]!; lanes[r + 3] = lanes[from + 1]!;
      break;
    case Shuffle.unpackHighSingle:
      lanes[r] = lanes[to + 2]!; lanes[r + 1] = lanes[from + 2]!; lanes[r + 2] = lanes[to + 3]!; lanes[r + 3] = lanes[from + 3]!;
      break;
    case Shuffle.unpackLowDouble:
      lanes[r] = lanes[to]!; lanes[r + 1] = lanes[to + 1]!; lanes[r + 2] = lanes[from]!; lanes[r + 3] = lanes[from + 1]!;
      break;
    case Shuffle.unpackHighDouble:
      lanes[r] = lanes[to + 2]!; lanes[r + 1] = lanes[to + 3]!; lanes[r + 2] = lanes[from + 2]!; lanes[r + 3] = lanes[from + 3]!;
      break;
    case Shuffle.shuffleSingle:
      lanes[r] = lanes[to + (select & 3)]!;
      lanes[r + 1] = lanes[to + ((select >> 2) & 3)]!;
      lanes[r + 2] = lanes[from + ((select >> 4) & 3)]!;
      lanes[r + 3] = lanes[from + ((select >> 6) & 3)]!;
      break;
    case Shuffle.shuffleDouble: {
      const low = to + (select & 1) * 2;
      const high = from + ((select >> 1) & 1) * 2;
      lanes[r] = lanes[low]!; lanes[r + 1] = lanes[low + 1]!; lanes[r + 2] = lanes[high]!; lanes[r + 3] = lanes[high + 1]!;
      break;
    }
    case Shuffle.insertSingle: {
      // INSERTPS: element imm[7:6] of a register source (a memory source is one float), to element imm[5:4], then zero imm[3:0].
      copyLanes(lanes, r, to);
      lanes[r + ((select >> 4) & 3)] = lanes[from + (instruction.kind1 === OperandKind.Register ? (select >> 6) & 3 : 0)]!;
      for (let lane = 0; lane < 4; lane++) if ((select >> lane) & 1) lanes[r + lane] = 0;
      break;
    }
    default: {
      // Blends: a set selector bit takes the source element (BLENDPD: one bit per 64-bit element).
      const double = operation === Shuffle.blendDouble || operation === Shuffle.blendVariableDouble;
      const variable = operation === Shuffle.blendVariableSingle || operation === Shuffle.blendVariableDouble;
      for (let lane = 0; lane < 4; lane++) {
        const element = double ? lane >> 1 : lane;
        const chosen = variable ? lanes[(double ? element * 2 + 1 : element)]! >>> 31 : (select >> element) & 1;
        lanes[r + lane] = lanes[(chosen !== 0 ? from : to) + lane]!;
      }
    }
  }
  copyLanes(lanes, to, r);
}

/** MOVMSKPS/MOVMSKPD (`sub` SseForm.double): the elements' sign bits into a general register, zero-extended. */
export function sseMoveMask(cpu: Cpu, instruction: Instruction): void {
  const lanes = enterSse(cpu).lanes;
  const from = instruction.register1 * 4;
  const mask = (instruction.sub & SseForm.double) !== 0
    ? (lanes[from + 1]! >>> 31) | ((lanes[from + 3]! >>> 31) << 1)
    : (lanes[from]! >>> 31) | ((lanes[from + 1]! >>> 31) << 1) | ((lanes[from + 2]! >>> 31) << 2) | ((lanes[from + 3]! >>> 31) << 3);
  cpu.writeRegister(instruction.register0, 4, mask, 0);
}

/** EXTRACTPS r/m32, xmm, imm8: element imm[1:0] to a general register (zero-extended) or memory. */
export function sseExtract(cpu: Cpu, instruction: Instruction): void {
  const lanes = enterSse(cpu).lanes;
  const value = lanes[instruction.register1 * 4 + (instruction.immediate & 3)]! | 0;
  if (instruction.kind0 === OperandKind.Memory) cpu.writeLinear(memoryLinear(cpu, instruction, 4, true), 4, value, 0);
  else cpu.writeRegister(instruction.register0, 4, value, 0);
}
