import type { CpuCore as Cpu } from '../cpu-core.js';
import { type Instruction, OperandKind } from '../decoder/instruction.js';
import type { InstructionRun } from '../decoder/instruction.js';
import type { OpcodeEntry } from '../decoder/opcode-entry.js';
import { FlagOp } from '../flags/lazy-flags.js';
import { arithmetic } from './arithmetic.js';
import { effectiveOffset } from './operands.js';

/*
 * Specialised forms of the most frequent instructions, chosen at decode time
 * once the operands are known. Each does exactly what the generic handler
 * does for that form, minus the operand-kind dispatch.
 */

function movRegister32(cpu: Cpu, instruction: Instruction): void {
  cpu.low[instruction.register0] = cpu.low[instruction.register1]!;
  cpu.high[instruction.register0] = 0;
}

function movRegister64(cpu: Cpu, instruction: Instruction): void {
  cpu.low[instruction.register0] = cpu.low[instruction.register1]!;
  cpu.high[instruction.register0] = cpu.high[instruction.register1]!;
}

function movImmediate32(cpu: Cpu, instruction: Instruction): void {
  cpu.low[instruction.register0] = instruction.immediate;
  cpu.high[instruction.register0] = 0;
}

function movImmediate64(cpu: Cpu, instruction: Instruction): void {
  cpu.low[instruction.register0] = instruction.immediate;
  cpu.high[instruction.register0] = instruction.immediateHigh;
}

function movLoad32(cpu: Cpu, instruction: Instruction): void {
  const linear = cpu.linear(instruction.segment, effectiveOffset(cpu, instruction), 4, false);
  cpu.low[instruction.register0] = cpu.mmu.read32(linear);
  cpu.high[instruction.register0] = 0;
}

function movLoad64(cpu: Cpu, instruction: Instruction): void {
  const linear = cpu.linear(instruction.segment, effectiveOffset(cpu, instruction), 8, false);
  const low = cpu.mmu.read64(linear);
  cpu.low[instruction.register0] = low;
  cpu.high[instruction.register0] = cpu.valueHigh;
}

function movStore32(cpu: Cpu, instruction: Instruction): void {
  const linear = cpu.linear(instruction.segment, effectiveOffset(cpu, instruction), 4, true);
  cpu.mmu.write32(linear, cpu.low[instruction.register1]!);
}

function movStore64(cpu: Cpu, instruction: Instruction): void {
  const linear = cpu.linear(instruction.segment, effectiveOffset(cpu, instruction), 8, true);
  cpu.mmu.write64(linear, cpu.low[instruction.register1]!, cpu.high[instruction.register1]!);
}

function aluRegister(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const destination = instruction.register0;
  const source = instruction.register1;
  const result = arithmetic(cpu, instruction.sub, size, cpu.low[destination]!, cpu.high[destination]!, cpu.low[source]!, cpu.high[source]!);
  if (instruction.sub !== 7) {
    cpu.low[destination] = result;
    cpu.high[destination] = size === 8 ? cpu.valueHigh : 0;
  }
}

function aluImmediate(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const destination = instruction.register0;
  const result = arithmetic(cpu, instruction.sub, size, cpu.low[destination]!, cpu.high[destination]!, instruction.immediate, instruction.immediateHigh);
  if (instruction.sub !== 7) {
    cpu.low[destination] = result;
    cpu.high[destination] = size === 8 ? cpu.valueHigh : 0;
  }
}

function aluLoad(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const destination = instruction.register0;
  const linear = cpu.linear(instruction.segment, effectiveOffset(cpu, instruction), size, false);
  const value = size === 8 ? cpu.mmu.read64(linear) : cpu.mmu.read32(linear);
  const result = arithmetic(cpu, instruction.sub, size, cpu.low[destination]!, cpu.high[destination]!, value, size === 8 ? cpu.valueHigh : 0);
  if (instruction.sub !== 7) {
    cpu.low[destination] = result;
    cpu.high[destination] = size === 8 ? cpu.valueHigh : 0;
  }
}

function incrementRegister32(cpu: Cpu, instruction: Instruction): void {
  const register = instruction.register0;
  const result = (cpu.low[register]! + 1) | 0;
  cpu.low[register] = result;
  cpu.high[register] = 0;
  cpu.flags.setIncDec(FlagOp.Inc, 4, result, 0);
}

function decrementRegister32(cpu: Cpu, instruction: Instruction): void {
  const register = instruction.register0;
  const result = (cpu.low[register]! - 1) | 0;
  cpu.low[register] = result;
  cpu.high[register] = 0;
  cpu.flags.setIncDec(FlagOp.Dec, 4, result, 0);
}

function testRegister(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const a = instruction.register0;
  const b = instruction.register1;
  if (size === 8) cpu.flags.set64(FlagOp.Logic, cpu.low[a]! & cpu.low[b]!, cpu.high[a]! & cpu.high[b]!, 0, 0, 0, 0);
  else cpu.flags.set(FlagOp.Logic, 4, cpu.low[a]! & cpu.low[b]!, 0, 0);
}

/**
 * A faster routine for this decoded form, or `undefined` to use the generic
 * handler. Only 32- and 64-bit register/memory forms are specialised.
 */
export function fastPath(entry: OpcodeEntry, instruction: Instruction): InstructionRun | undefined {
  const size = instruction.operandSize;
  if (size !== 4 && size !== 8) return undefined;
  const kind0 = instruction.kind0;
  const kind1 = instruction.kind1;
  if (entry.handler === 'mov') {
    if (kind0 === OperandKind.Register && kind1 === OperandKind.Register) return size === 8 ? movRegister64 : movRegister32;
    if (kind0 === OperandKind.Register && kind1 === OperandKind.Immediate) return size === 8 ? movImmediate64 : movImmediate32;
    if (entry.operands[0] === 'Gv' && kind1 === OperandKind.Memory) return size === 8 ? movLoad64 : movLoad32;
    if (entry.operands[1] === 'Gv' && kind0 === OperandKind.Memory) return size === 8 ? movStore64 : movStore32;
    return undefined;
  }
  if ((entry.handler === 'inc' || entry.handler === 'dec') && kind0 === OperandKind.Register && size === 4) {
    return entry.handler === 'inc' ? incrementRegister32 : decrementRegister32;
  }
  if (entry.handler === 'test' && kind0 === OperandKind.Register && kind1 === OperandKind.Register) return testRegister;
  if (entry.handler === 'alu' && kind0 === OperandKind.Register) {
    if (kind1 === OperandKind.Register) return aluRegister;
    if (kind1 === OperandKind.Immediate) return aluImmediate;
    if (kind1 === OperandKind.Memory) return aluLoad;
  }
  return undefined;
}
