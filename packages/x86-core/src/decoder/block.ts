import type { Instruction } from './instruction.js';
import type { HandlerName } from './opcode-entry.js';

/** Longest block: bounds the work thrown away when a block is left early. */
export const MAX_BLOCK_INSTRUCTIONS = 32;

/** The longest x86 instruction, in bytes. */
export const MAX_INSTRUCTION_LENGTH = 15;

/**
 * Handlers that may move RIP elsewhere: a block ends with one. The run loop
 * tests RIP after every generic handler but not after a fast form, so the
 * fast forms' handlers (jcc, jmp, call, ret) must be here; the others only
 * save decoding the bytes after an unconditional transfer.
 */
const CONTROL_TRANSFERS = new Set<HandlerName>([
  'jcc', 'jmp', 'jmpIndirect', 'call', 'callIndirect', 'ret', 'jmpFar', 'jmpFarIndirect', 'callFar', 'callFarIndirect', 'retFar', 'loop', 'jcxz',
  'int3', 'int', 'into', 'int1', 'iret', 'hlt', 'syscall', 'sysret', 'sysenter', 'sysexit', 'ud',
]);

/** Whether `instruction` must be the last of its block. */
export function endsBlock(instruction: Instruction): boolean {
  return CONTROL_TRANSFERS.has(instruction.entry.handler);
}

/**
 * A straight run of decoded instructions in one page, which the run loop
 * executes one after another without looking anything up between them. Only
 * its last instruction is a jump, call or return; one in the middle may still
 * change RIP (a REP string step, a fault) or raise `attention`, and the loop
 * leaves the block when it does. It hangs off its first instruction, so it is
 * dropped with the page's decoded code.
 */
export class Block {
  readonly instructions: Instruction[] = [];
  /** The end of each instruction as an offset from the block's first byte. */
  readonly ends: number[] = [];
  byteLength = 0;
  /** An instruction addresses memory relative to RIP, so the run loop keeps RIP up to date per instruction. */
  usesRip = false;

  /** Where instruction `index` starts, as an offset from the block's first byte. */
  offsetOf(index: number): number {
    return index === 0 ? 0 : this.ends[index - 1]!;
  }
  /** The block run next when this one fell through, and the last one a jump out of it reached with its RIP; both in this page. */
  next: Block | undefined = undefined;
  branch: Block | undefined = undefined;
  branchRip = Number.NaN;
}
