import type { CpuCore as Cpu } from '../cpu-core.js';
import { type Instruction, OperandKind } from '../decoder/instruction.js';
import { readXmmMemory, readXmmSource, copyLanes, enterSse, writeXmmMemory } from './simd-support.js';
import { MEMORY_LANES } from '../fpu/sse-state.js';
import { PartialMove } from '../fpu/sse-codes.js';

/**
 * 128-bit moves: MOVAPS, MOVUPS, MOVAPD, MOVUPD, MOVNTPS, MOVNTPD, LDDQU
 * (and the integer MOVDQA/MOVDQU). Operand 0 is the destination (register or
 * memory), operand 1 the source; the table's `Aligned` flag asks for 16-byte alignment.
 */
export function sseMove(cpu: Cpu, instruction: Instruction): void {
  const sse = enterSse(cpu);
  if (instruction.kind0 === OperandKind.Memory) {
    writeXmmMemory(cpu, instruction, instruction.register1 * 4, 16);
    return;
  }
  copyLanes(sse.lanes, instruction.register0 * 4, readXmmSource(cpu, instruction, 16));
}

/**
 * MOVSS (`sub` 4) and MOVSD (`sub` 8): a load from memory zeroes the rest of
 * the register, a register move replaces only the low element, a store writes the element.
 */
export function sseMoveScalar(cpu: Cpu, instruction: Instruction): void {
  const sse = enterSse(cpu);
  const size = instruction.sub;
  const lanes = sse.lanes;
  if (instruction.kind0 === OperandKind.Memory) {
    writeXmmMemory(cpu, instruction, instruction.register1 * 4, size);
    return;
  }
  const to = instruction.register0 * 4;
  if (instruction.kind1 === OperandKind.Memory) {
    readXmmMemory(cpu, instruction, size);
    copyLanes(lanes, to, MEMORY_LANES);
    return;
  }
  const from = instruction.register1 * 4;
  lanes[to] = lanes[from]!;
  if (size === 8) lanes[to + 1] = lanes[from + 1]!;
}

/** MOVLPS/MOVHPS/MOVLPD/MOVHPD/MOVHLPS/MOVLHPS/MOVDDUP/MOVSLDUP/MOVSHDUP (see {@link PartialMove}). */
export function ssePartialMove(cpu: Cpu, instruction: Instruction): void {
  const sse = enterSse(cpu);
  const lanes = sse.lanes;
  const operation = instruction.sub;
  if (operation === PartialMove.storeLow || operation === PartialMove.storeHigh) {
    writeXmmMemory(cpu, instruction, instruction.register1 * 4 + (operation === PartialMove.storeHigh ? 2 : 0), 8);
    return;
  }
  const to = instruction.register0 * 4;
  const from = readXmmSource(cpu, instruction, operation === PartialMove.duplicateEven || operation === PartialMove.duplicateOdd ? 16 : 8);
  const low = lanes[from]!;
  const high = lanes[from + 1]!;
  switch (operation) {
    case PartialMove.loadLow:
      lanes[to] = low;
      lanes[to + 1] = high;
      return;
    case PartialMove.loadHigh:
    case PartialMove.lowToHigh:
      lanes[to + 2] = low;
      lanes[to + 3] = high;
      return;
    case PartialMove.highToLow:
      lanes[to] = lanes[from + 2]!;
      lanes[to + 1] = lanes[from + 3]!;
      return;
    case PartialMove.duplicateLow:
      lanes[to] = lanes[to + 2] = low;
      lanes[to + 1] = lanes[to + 3] = high;
      return;
    case PartialMove.duplicateEven: {
      const third = lanes[from + 2]!;
      lanes[to] = lanes[to + 1] = low;
      lanes[to + 2] = lanes[to + 3] = third;
      return;
    }
    default: {
      const fourth = lanes[from + 3]!;
      lanes[to] = lanes[to + 1] = high;
      lanes[to + 2] = lanes[to + 3] = fourth;
    }
  }
}
