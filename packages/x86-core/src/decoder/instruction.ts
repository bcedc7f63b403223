import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Block } from './block.js';
import type { OpcodeEntry } from './opcode-entry.js';

/** Where an operand lives after decoding. */
export enum OperandKind { Register = 0, Memory = 1, Immediate = 2, None = 3 }

/** Register numbers 16–19 in a byte operand mean AH, CH, DH, BH (no REX prefix). */
export const HIGH_BYTE_REGISTER = 16;

/** `Instruction.base` of a RIP-relative memory operand (64-bit mode). */
export const RIP_BASE = 16;

/**
 * A register slot past every register number (0–15, and 16–19 for AH–BH)
 * that always holds zero. Fast forms address memory as
 * `low[addressBase] + (low[addressIndex] << scale) + displacement` with this
 * slot standing in for a missing base or index, so the sum has no branches.
 */
export const ZERO_REGISTER = 20;

/** Code size the bytes were decoded for: 16-bit, 32-bit or 64-bit code segment. */
export enum CodeMode { Bits16 = 0, Bits32 = 1, Bits64 = 2 }

export enum OpcodeMap { OneByte = 0, TwoByte = 1, ThreeByte38 = 2, ThreeByte3A = 3, Vex0F = 4, Vex0F38 = 5, Vex0F3A = 6 }

/** Repeat prefix in effect. */
export enum Repeat { None = 0, Repeat = 1, RepeatNot = 2 }

export type InstructionRun = (cpu: Cpu, instruction: Instruction) => void;

const notLinked: InstructionRun = () => {
  throw new Error('instruction decoded without an interpreter');
};

/**
 * One decoded instruction. Objects are allocated once per decode and cached
 * with their code page, so nothing here is allocated while executing.
 */
export class Instruction {
  // What the run loop and the fast forms read comes first, so that it shares as few cache lines as can be.
  run: InstructionRun = notLinked;
  /** Which of the run loop's directly called handlers `run` is (`InlineHandler` in instructions/fast-paths.ts), or 0. */
  inline = 0;
  mode: CodeMode = CodeMode.Bits32;
  register0 = 0;
  register1 = 0;
  /** `base` and `index` for the fast forms' address sum, ZERO_REGISTER where absent (set only for those forms). */
  addressBase = ZERO_REGISTER;
  addressIndex = ZERO_REGISTER;
  scale = 0;
  displacement = 0;
  /** The segment the memory operand uses: the override or the default for its base. */
  segment = 3;
  immediate = 0;
  sub = 0;
  /** Source operand. */
  kind1: number = OperandKind.None;
  immediateHigh = 0;
  length = 0;
  /** The block that starts with this instruction, once the run loop has built it (cached instructions only). */
  block: Block | undefined = undefined;
  entry!: OpcodeEntry;
  map = 0;
  opcode = 0;
  /** Effective operand size in bytes (1 for byte forms). */
  operandSize = 4;
  /** Operand size as the prefixes set it, ignoring the byte form (for string and I/O instructions). */
  wideSize = 4;
  addressSize = 4;
  /** Segment override (0–5) or -1. */
  segmentOverride = -1;
  repeat = 0;
  lock = false;
  rex = 0;
  operandSizePrefix = false;
  /** Decoded with a VEX prefix. */
  vex = false;
  /** VEX.vvvv: the extra register operand (B in the operand notation). */
  vexRegister = 0;
  hasModRM = false;
  mod = 0;
  /** ModRM.reg with REX.R (also the group selector). */
  regField = 0;
  /** ModRM.rm with REX.B. */
  rmField = 0;
  hasMemory = false;
  /** Base register, RIP_BASE for RIP-relative, or -1. */
  base = -1;
  index = -1;
  /** High half of a 64-bit absolute address (A0–A3 with 64-bit addressing). */
  displacementHigh = 0;
  /** Destination operand. */
  kind0: number = OperandKind.None;
  immediate2 = 0;
}
