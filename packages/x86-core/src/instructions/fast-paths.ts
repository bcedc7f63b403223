import type { CpuCore as Cpu } from '../cpu-core.js';
import { CodeMode, type Instruction, OperandKind, ZERO_REGISTER } from '../decoder/instruction.js';
import type { InstructionRun } from '../decoder/instruction.js';
import type { OpcodeEntry } from '../decoder/opcode-entry.js';
import { FlagOp } from '../flags/lazy-flags.js';
import { Flag, Seg, Vector } from '../state/registers.js';
import { arithmetic } from './arithmetic.js';
import { call, jcc, jmp, ret } from './control-flow.js';
import { pop, push } from './data-transfer.js';
import { shift } from './shift.js';
import { effectiveOffset } from './operands.js';

/*
 * Specialised forms of the most frequent instructions, chosen at decode time
 * once the operands are known. Each does exactly what the generic handler
 * does for that form, minus the operand-kind dispatch.
 */

/**
 * The linear address of a fast form's memory operand. Outside 64-bit mode
 * its address size is 32 (`fastPath` gives 16-bit addressing no fast form)
 * and the sum has no branches: ZERO_REGISTER stands in for a missing base or
 * index. The mode test itself always goes the same way for long stretches.
 */
function operandLinear(cpu: Cpu, instruction: Instruction, size: number, write: boolean): number {
  if (instruction.mode === CodeMode.Bits64) return cpu.linear(instruction.segment, effectiveOffset(cpu, instruction), size, write);
  return cpu.linearSegmented(instruction.segment, offset32(cpu, instruction), size, write);
}

function offset32(cpu: Cpu, instruction: Instruction): number {
  const low = cpu.low;
  return (low[instruction.addressBase]! + (low[instruction.addressIndex]! << instruction.scale) + instruction.displacement) >>> 0;
}

export function movRegister32(cpu: Cpu, instruction: Instruction): void {
  cpu.low[instruction.register0] = cpu.low[instruction.register1]!;
  cpu.high[instruction.register0] = 0;
}

export function movRegister64(cpu: Cpu, instruction: Instruction): void {
  cpu.low[instruction.register0] = cpu.low[instruction.register1]!;
  cpu.high[instruction.register0] = cpu.high[instruction.register1]!;
}

export function movImmediate32(cpu: Cpu, instruction: Instruction): void {
  cpu.low[instruction.register0] = instruction.immediate;
  cpu.high[instruction.register0] = 0;
}

function movImmediate64(cpu: Cpu, instruction: Instruction): void {
  cpu.low[instruction.register0] = instruction.immediate;
  cpu.high[instruction.register0] = instruction.immediateHigh;
}

export function movLoad32(cpu: Cpu, instruction: Instruction): void {
  const linear = operandLinear(cpu, instruction, 4, false);
  cpu.low[instruction.register0] = cpu.mmu.read32(linear);
  cpu.high[instruction.register0] = 0;
}

export function movLoad64(cpu: Cpu, instruction: Instruction): void {
  const linear = operandLinear(cpu, instruction, 8, false);
  const low = cpu.mmu.read64(linear);
  cpu.low[instruction.register0] = low;
  cpu.high[instruction.register0] = cpu.valueHigh;
}

export function movStore32(cpu: Cpu, instruction: Instruction): void {
  const linear = operandLinear(cpu, instruction, 4, true);
  cpu.mmu.write32(linear, cpu.low[instruction.register1]!);
}

export function movStore64(cpu: Cpu, instruction: Instruction): void {
  const linear = operandLinear(cpu, instruction, 8, true);
  cpu.mmu.write64(linear, cpu.low[instruction.register1]!, cpu.high[instruction.register1]!);
}

export function movLoad8(cpu: Cpu, instruction: Instruction): void {
  const linear = operandLinear(cpu, instruction, 1, false);
  cpu.setReg8(instruction.register0, cpu.mmu.read8(linear));
}

export function movStore8(cpu: Cpu, instruction: Instruction): void {
  const linear = operandLinear(cpu, instruction, 1, true);
  cpu.mmu.write8(linear, cpu.reg8(instruction.register1));
}

export function movLoad16(cpu: Cpu, instruction: Instruction): void {
  const value = cpu.mmu.read16(operandLinear(cpu, instruction, 2, false));
  // A 16-bit destination keeps the rest of the register.
  cpu.low[instruction.register0] = (cpu.low[instruction.register0]! & ~0xffff) | value;
}

export function movStore16(cpu: Cpu, instruction: Instruction): void {
  cpu.mmu.write16(operandLinear(cpu, instruction, 2, true), cpu.low[instruction.register1]! & 0xffff);
}

/** MOV m32, imm32. */
export function movStoreImmediate32(cpu: Cpu, instruction: Instruction): void {
  cpu.mmu.write32(operandLinear(cpu, instruction, 4, true), instruction.immediate);
}

/** MOVZX r32, m8/m16 (`sub` is the source size). */
export function movzxLoad32(cpu: Cpu, instruction: Instruction): void {
  const linear = operandLinear(cpu, instruction, instruction.sub, false);
  cpu.low[instruction.register0] = instruction.sub === 1 ? cpu.mmu.read8(linear) : cpu.mmu.read16(linear);
  cpu.high[instruction.register0] = 0;
}

/** MOVZX r32, r8/r16 (`sub` is the source size). */
export function movzxRegister32(cpu: Cpu, instruction: Instruction): void {
  cpu.low[instruction.register0] = instruction.sub === 1 ? cpu.reg8(instruction.register1) : cpu.low[instruction.register1]! & 0xffff;
  cpu.high[instruction.register0] = 0;
}

/** LEA r32, m with 32-bit addressing outside 64-bit mode. */
export function lea32(cpu: Cpu, instruction: Instruction): void {
  cpu.low[instruction.register0] = offset32(cpu, instruction);
  cpu.high[instruction.register0] = 0;
}

/** IMUL r32, r32 (two operands). CF/OF are worked out from the operands if read, as `imul` records them. */
export function imulRegister32(cpu: Cpu, instruction: Instruction): void {
  const destination = instruction.register0;
  const source = cpu.low[instruction.register1]!;
  const other = cpu.low[destination]!;
  const product = Math.imul(source, other);
  cpu.low[destination] = product;
  cpu.high[destination] = 0;
  cpu.flags.set(FlagOp.Multiply, 4, product, source, other);
}

/** CMOVcc r32, r/m32: the source is read (and may fault) whatever the condition; the destination is zero-extended either way. */
export function conditionalMove32(cpu: Cpu, instruction: Instruction): void {
  const destination = instruction.register0;
  const value = instruction.kind1 === OperandKind.Memory ? cpu.mmu.read32(operandLinear(cpu, instruction, 4, false)) : cpu.low[instruction.register1]!;
  if (cpu.flags.condition(instruction.sub)) cpu.low[destination] = value;
  cpu.high[destination] = 0;
}

/** SETcc r8. */
export function setConditionRegister(cpu: Cpu, instruction: Instruction): void {
  cpu.setReg8(instruction.register0, cpu.flags.condition(instruction.sub) ? 1 : 0);
}

/** SHL/SAL, SHR, SAR of a 32-bit register (`sub` 4–7) by CL or an immediate, as `shift` does them. */
export function shiftRegister32(cpu: Cpu, instruction: Instruction): void {
  const register = instruction.register0;
  const count = (instruction.kind1 === OperandKind.Register ? cpu.low[1]! : instruction.immediate) & 0x1f;
  const value = cpu.low[register]!;
  cpu.high[register] = 0;
  // A zero count changes no flags (the zero-extension above still happens).
  if (count === 0) return;
  let result: number;
  let carry: number;
  let overflow: number;
  switch (instruction.sub) {
    case 5:
      result = (value >>> count) | 0;
      carry = (value >>> (count - 1)) & 1;
      overflow = value >>> 31;
      break;
    case 7:
      result = value >> count;
      carry = (value >> (count - 1)) & 1;
      overflow = 0;
      break;
    default:
      result = value << count;
      carry = (value >>> (32 - count)) & 1;
      overflow = (result >>> 31) ^ carry;
      break;
  }
  cpu.low[register] = result;
  cpu.flags.setResult(4, result, 0, (carry !== 0 ? Flag.CF : 0) | (overflow !== 0 ? Flag.OF : 0));
}

/** SHL/SAL, SHR, SAR of a 16-bit register by 1–15 (CL or an immediate); other counts take `shift`, which knows their flags. */
export function shiftRegister16(cpu: Cpu, instruction: Instruction): void {
  const register = instruction.register0;
  const count = (instruction.kind1 === OperandKind.Register ? cpu.low[1]! : instruction.immediate) & 0x1f;
  if (count === 0 || count > 15) return shift(cpu, instruction);
  const full = cpu.low[register]!;
  const value = full & 0xffff;
  let result: number;
  let carry: number;
  let overflow: number;
  switch (instruction.sub) {
    case 5:
      result = value >>> count;
      carry = (value >>> (count - 1)) & 1;
      overflow = value >>> 15;
      break;
    case 7: {
      const signed = (value << 16) >> 16;
      result = (signed >> count) & 0xffff;
      carry = (signed >> (count - 1)) & 1;
      overflow = 0;
      break;
    }
    default:
      result = (value << count) & 0xffff;
      carry = (value >>> (16 - count)) & 1;
      overflow = (result >>> 15) ^ carry;
      break;
  }
  // A 16-bit destination keeps the rest of the register.
  cpu.low[register] = (full & ~0xffff) | result;
  cpu.flags.setResult(2, result, 0, (carry !== 0 ? Flag.CF : 0) | (overflow !== 0 ? Flag.OF : 0));
}

/** `arithmetic` for 32-bit operands (int32 values), without its size dispatch for the common operations. */
function arithmetic32(cpu: Cpu, op: number, a: number, b: number): number {
  const flags = cpu.flags;
  let result: number;
  // Most frequent first (CMP, SUB, ADD, XOR, AND): a switch is a chain of tests.
  switch (op) {
    case 7:
    case 5:
      result = (a - b) | 0;
      flags.set(FlagOp.Sub, 4, result, a, b);
      return result;
    case 0:
      result = (a + b) | 0;
      flags.set(FlagOp.Add, 4, result, a, b);
      return result;
    case 6:
      result = a ^ b;
      flags.set(FlagOp.Logic, 4, result, 0, 0);
      return result;
    case 4:
      result = a & b;
      flags.set(FlagOp.Logic, 4, result, 0, 0);
      return result;
    case 1:
      result = a | b;
      flags.set(FlagOp.Logic, 4, result, 0, 0);
      return result;
    case 2: {
      const carry = flags.cf();
      result = (a + b + carry) | 0;
      flags.set(carry !== 0 ? FlagOp.Adc : FlagOp.Add, 4, result, a, b);
      return result;
    }
    default: {
      const borrow = flags.cf();
      result = (a - b - borrow) | 0;
      flags.set(borrow !== 0 ? FlagOp.Sbb : FlagOp.Sub, 4, result, a, b);
      return result;
    }
  }
}

export function aluRegister(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const destination = instruction.register0;
  const source = instruction.register1;
  if (size === 4) {
    const result = arithmetic32(cpu, instruction.sub, cpu.low[destination]!, cpu.low[source]!);
    if (instruction.sub !== 7) {
      cpu.low[destination] = result;
      cpu.high[destination] = 0;
    }
    return;
  }
  const result = arithmetic(cpu, instruction.sub, size, cpu.low[destination]!, cpu.high[destination]!, cpu.low[source]!, cpu.high[source]!);
  if (instruction.sub !== 7) {
    cpu.low[destination] = result;
    cpu.high[destination] = size === 8 ? cpu.valueHigh : 0;
  }
}

export function aluImmediate(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const destination = instruction.register0;
  if (size === 4) {
    const result = arithmetic32(cpu, instruction.sub, cpu.low[destination]!, instruction.immediate);
    if (instruction.sub !== 7) {
      cpu.low[destination] = result;
      cpu.high[destination] = 0;
    }
    return;
  }
  const result = arithmetic(cpu, instruction.sub, size, cpu.low[destination]!, cpu.high[destination]!, instruction.immediate, instruction.immediateHigh);
  if (instruction.sub !== 7) {
    cpu.low[destination] = result;
    cpu.high[destination] = size === 8 ? cpu.valueHigh : 0;
  }
}

export function aluLoad(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const destination = instruction.register0;
  const linear = operandLinear(cpu, instruction, size, false);
  if (size === 4) {
    const result = arithmetic32(cpu, instruction.sub, cpu.low[destination]!, cpu.mmu.read32(linear));
    if (instruction.sub !== 7) {
      cpu.low[destination] = result;
      cpu.high[destination] = 0;
    }
    return;
  }
  const value = cpu.mmu.read64(linear);
  const result = arithmetic(cpu, instruction.sub, size, cpu.low[destination]!, cpu.high[destination]!, value, size === 8 ? cpu.valueHigh : 0);
  if (instruction.sub !== 7) {
    cpu.low[destination] = result;
    cpu.high[destination] = size === 8 ? cpu.valueHigh : 0;
  }
}

/** ADD…CMP with a 32-bit memory destination and a register or immediate source (read, then write, as the generic handler). */
export function aluStore32(cpu: Cpu, instruction: Instruction): void {
  const op = instruction.sub;
  const linear = operandLinear(cpu, instruction, 4, op !== 7);
  const value = cpu.mmu.read32(linear);
  const result = arithmetic32(cpu, op, value, instruction.kind1 === OperandKind.Register ? cpu.low[instruction.register1]! : instruction.immediate);
  if (op !== 7) cpu.mmu.write32(linear, result);
}

/** The source of a byte form: a register, an immediate or memory. */
function byteSource(cpu: Cpu, instruction: Instruction): number {
  const kind = instruction.kind1;
  if (kind === OperandKind.Register) return cpu.reg8(instruction.register1);
  if (kind === OperandKind.Immediate) return instruction.immediate & 0xff;
  return cpu.mmu.read8(operandLinear(cpu, instruction, 1, false));
}

/** ADD…CMP with an 8-bit register destination (any source). */
export function aluRegister8(cpu: Cpu, instruction: Instruction): void {
  const op = instruction.sub;
  const result = arithmetic(cpu, op, 1, cpu.reg8(instruction.register0), 0, byteSource(cpu, instruction), 0);
  if (op !== 7) cpu.setReg8(instruction.register0, result);
}

/** TEST r/m8, r8 or imm8. */
export function testByte(cpu: Cpu, instruction: Instruction): void {
  const a = instruction.kind0 === OperandKind.Register ? cpu.reg8(instruction.register0) : cpu.mmu.read8(operandLinear(cpu, instruction, 1, false));
  cpu.flags.set(FlagOp.Logic, 1, a & byteSource(cpu, instruction), 0, 0);
}

/** INC or DEC m32 (`delta` ±1): read, then write, as the generic handler. */
function incrementDecrementMemory32(cpu: Cpu, instruction: Instruction, delta: number): void {
  const linear = operandLinear(cpu, instruction, 4, true);
  const result = (cpu.mmu.read32(linear) + delta) | 0;
  cpu.mmu.write32(linear, result);
  cpu.flags.setIncDec(delta > 0 ? FlagOp.Inc : FlagOp.Dec, 4, result, 0);
}

export function incrementMemory32(cpu: Cpu, instruction: Instruction): void {
  incrementDecrementMemory32(cpu, instruction, 1);
}

export function decrementMemory32(cpu: Cpu, instruction: Instruction): void {
  incrementDecrementMemory32(cpu, instruction, -1);
}

export function notRegister32(cpu: Cpu, instruction: Instruction): void {
  cpu.low[instruction.register0] = ~cpu.low[instruction.register0]!;
  cpu.high[instruction.register0] = 0;
}

export function incrementRegister32(cpu: Cpu, instruction: Instruction): void {
  const register = instruction.register0;
  const result = (cpu.low[register]! + 1) | 0;
  cpu.low[register] = result;
  cpu.high[register] = 0;
  cpu.flags.setIncDec(FlagOp.Inc, 4, result, 0);
}

export function decrementRegister32(cpu: Cpu, instruction: Instruction): void {
  const register = instruction.register0;
  const result = (cpu.low[register]! - 1) | 0;
  cpu.low[register] = result;
  cpu.high[register] = 0;
  cpu.flags.setIncDec(FlagOp.Dec, 4, result, 0);
}

export function testRegister(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const a = instruction.register0;
  const b = instruction.register1;
  if (size === 8) cpu.flags.set64(FlagOp.Logic, cpu.low[a]! & cpu.low[b]!, cpu.high[a]! & cpu.high[b]!, 0, 0, 0, 0);
  else cpu.flags.set(FlagOp.Logic, 4, cpu.low[a]! & cpu.low[b]!, 0, 0);
}

/*
 * Stack forms for a 32-bit stack (SS.B = 1); any other stack width takes the
 * generic handler, which also applies the 16-bit wrap.
 */

export function pushRegister32(cpu: Cpu, instruction: Instruction): void {
  if (cpu.stackSize !== 4) return push(cpu, instruction);
  const top = (cpu.low[4]! - 4) >>> 0;
  cpu.mmu.write32(cpu.linear(Seg.SS, top, 4, true), cpu.low[instruction.register0]!);
  cpu.low[4] = top;
  cpu.high[4] = 0;
}

export function popRegister32(cpu: Cpu, instruction: Instruction): void {
  if (cpu.stackSize !== 4) return pop(cpu, instruction);
  const top = cpu.low[4]! >>> 0;
  const value = cpu.mmu.read32(cpu.linear(Seg.SS, top, 4, false));
  cpu.low[4] = top + 4;
  cpu.high[4] = 0;
  // POP ESP: the loaded value replaces the incremented pointer.
  cpu.low[instruction.register0] = value;
  cpu.high[instruction.register0] = 0;
}

/** CALL rel32 outside 64-bit mode. */
export function callRelative32(cpu: Cpu, instruction: Instruction): void {
  if (cpu.stackSize !== 4) return call(cpu, instruction);
  const destination = (cpu.rip + instruction.immediate) >>> 0;
  if (destination > cpu.segmentLimit[Seg.CS]!) cpu.fault(Vector.GP, 0);
  const top = (cpu.low[4]! - 4) >>> 0;
  cpu.mmu.write32(cpu.linear(Seg.SS, top, 4, true), cpu.rip);
  cpu.low[4] = top;
  cpu.high[4] = 0;
  cpu.rip = destination;
}

/** RET (no immediate) outside 64-bit mode. */
export function return32(cpu: Cpu, instruction: Instruction): void {
  if (cpu.stackSize !== 4) return ret(cpu, instruction);
  const top = cpu.low[4]! >>> 0;
  const destination = cpu.mmu.read32(cpu.linear(Seg.SS, top, 4, false)) >>> 0;
  if (destination > cpu.segmentLimit[Seg.CS]!) cpu.fault(Vector.GP, 0);
  cpu.low[4] = top + 4;
  cpu.high[4] = 0;
  cpu.rip = destination;
}

/** Jcc with a 32-bit operand size outside 64-bit mode. */
export function conditionalJump32(cpu: Cpu, instruction: Instruction): void {
  if (!cpu.flags.condition(instruction.sub)) return;
  const destination = (cpu.rip + instruction.immediate) >>> 0;
  if (destination > cpu.segmentLimit[Seg.CS]!) cpu.fault(Vector.GP, 0);
  cpu.rip = destination;
}

/** JMP rel with a 32-bit operand size outside 64-bit mode. */
export function jump32(cpu: Cpu, instruction: Instruction): void {
  const destination = (cpu.rip + instruction.immediate) >>> 0;
  if (destination > cpu.segmentLimit[Seg.CS]!) cpu.fault(Vector.GP, 0);
  cpu.rip = destination;
}

/**
 * A faster routine for this decoded form, or `undefined` to use the generic
 * handler. Only 32- and 64-bit forms, and byte MOV to and from memory, are
 * specialised; the stack and near-branch forms only outside 64-bit mode.
 */
export function fastPath(entry: OpcodeEntry, instruction: Instruction): InstructionRun | undefined {
  const size = instruction.operandSize;
  const kind0 = instruction.kind0;
  const kind1 = instruction.kind1;
  if (instruction.hasMemory) {
    // Memory forms outside 64-bit mode sum registers without branches; 16-bit addressing stays generic.
    if (instruction.mode !== CodeMode.Bits64 && instruction.addressSize !== 4) return undefined;
    instruction.addressBase = instruction.base >= 0 ? instruction.base : ZERO_REGISTER;
    instruction.addressIndex = instruction.index >= 0 ? instruction.index : ZERO_REGISTER;
  }
  if (entry.handler === 'setcc' && kind0 === OperandKind.Register) return setConditionRegister;
  if (size === 1 && entry.handler === 'mov') {
    if (entry.operands[0] === 'Gb' && kind1 === OperandKind.Memory) return movLoad8;
    if (entry.operands[1] === 'Gb' && kind0 === OperandKind.Memory) return movStore8;
    return undefined;
  }
  if (size === 1) {
    if (entry.handler === 'alu' && kind0 === OperandKind.Register) return aluRegister8;
    if (entry.handler === 'test') return testByte;
    return undefined;
  }
  // 16-bit fields are common enough: the XZ decoder's probabilities are loaded, shifted and stored.
  if (size === 2 && entry.handler === 'mov') {
    if (entry.operands[0] === 'Gv' && kind1 === OperandKind.Memory) return movLoad16;
    if (entry.operands[1] === 'Gv' && kind0 === OperandKind.Memory) return movStore16;
    return undefined;
  }
  if (size === 2 && entry.handler === 'shift' && kind0 === OperandKind.Register && instruction.sub >= 4) return shiftRegister16;
  if (size !== 4 && size !== 8) return undefined;
  if (entry.handler === 'movzx' && size === 4) return kind1 === OperandKind.Memory ? movzxLoad32 : movzxRegister32;
  if (entry.handler === 'cmov' && size === 4) return conditionalMove32;
  if (entry.handler === 'lea' && size === 4 && instruction.addressSize === 4 && instruction.mode !== CodeMode.Bits64) return lea32;
  if (entry.handler === 'imul' && size === 4 && entry.operands.length === 2 && kind1 === OperandKind.Register) return imulRegister32;
  if (entry.handler === 'shift' && size === 4 && kind0 === OperandKind.Register && instruction.sub >= 4) return shiftRegister32;
  if (entry.handler === 'mov') {
    if (kind0 === OperandKind.Register && kind1 === OperandKind.Register) return size === 8 ? movRegister64 : movRegister32;
    if (kind0 === OperandKind.Register && kind1 === OperandKind.Immediate) return size === 8 ? movImmediate64 : movImmediate32;
    if (entry.operands[0] === 'Gv' && kind1 === OperandKind.Memory) return size === 8 ? movLoad64 : movLoad32;
    if (entry.operands[1] === 'Gv' && kind0 === OperandKind.Memory) return size === 8 ? movStore64 : movStore32;
    if (size === 4 && kind0 === OperandKind.Memory && kind1 === OperandKind.Immediate) return movStoreImmediate32;
    // MOV EAX, moffs32 and back: the offset is the displacement (a 64-bit one is not).
    if (size === 4 && instruction.mode !== CodeMode.Bits64) {
      if (entry.operands[0] === 'rAX' && kind1 === OperandKind.Memory) return movLoad32;
      if (entry.operands[1] === 'rAX' && kind0 === OperandKind.Memory) return movStore32;
    }
    return undefined;
  }
  if ((entry.handler === 'inc' || entry.handler === 'dec') && size === 4) {
    if (kind0 === OperandKind.Register) return entry.handler === 'inc' ? incrementRegister32 : decrementRegister32;
    return entry.handler === 'inc' ? incrementMemory32 : decrementMemory32;
  }
  if (entry.handler === 'not' && kind0 === OperandKind.Register && size === 4) return notRegister32;
  if (size === 4 && instruction.mode !== CodeMode.Bits64) {
    if (entry.handler === 'push' && kind0 === OperandKind.Register) return pushRegister32;
    if (entry.handler === 'pop' && kind0 === OperandKind.Register) return popRegister32;
    if (entry.handler === 'call') return callRelative32;
    if (entry.handler === 'ret' && entry.operands.length === 0) return return32;
    if (entry.handler === 'jcc') return conditionalJump32;
    if (entry.handler === 'jmp') return jump32;
  }
  if (entry.handler === 'test' && kind0 === OperandKind.Register && kind1 === OperandKind.Register) return testRegister;
  if (entry.handler === 'alu' && kind0 === OperandKind.Register) {
    if (kind1 === OperandKind.Register) return aluRegister;
    if (kind1 === OperandKind.Immediate) return aluImmediate;
    if (kind1 === OperandKind.Memory) return aluLoad;
  }
  if (entry.handler === 'alu' && kind0 === OperandKind.Memory && size === 4 && (kind1 === OperandKind.Register || kind1 === OperandKind.Immediate)) return aluStore32;
  return undefined;
}

/**
 * The handlers the run loop calls by number (`Instruction.inline`) instead of
 * through `Instruction.run`: a call to a known function costs less than one
 * through a property with hundreds of targets, and the compiler may inline it.
 */
export enum InlineHandler {
  None = 0,
  MovRegister32 = 1,
  MovRegister64 = 2,
  MovImmediate32 = 3,
  MovLoad32 = 4,
  MovLoad64 = 5,
  MovStore32 = 6,
  MovStore64 = 7,
  AluRegister = 8,
  AluImmediate = 9,
  AluLoad = 10,
  IncrementRegister32 = 11,
  DecrementRegister32 = 12,
  TestRegister = 13,
  PushRegister32 = 14,
  PopRegister32 = 15,
  CallRelative32 = 16,
  Return32 = 17,
  Jcc = 18,
  Jmp = 19,
  ConditionalJump32 = 20,
  Jump32 = 21,
  AluStore32 = 22,
  MovLoad8 = 23,
  MovStore8 = 24,
  MovzxLoad32 = 25,
  ShiftRegister32 = 26,
  MovzxRegister32 = 27,
  Lea32 = 28,
  ImulRegister32 = 29,
  ConditionalMove32 = 30,
  SetConditionRegister = 31,
  MovLoad16 = 32,
  MovStore16 = 33,
  MovStoreImmediate32 = 34,
  AluRegister8 = 35,
  TestByte = 36,
  IncrementMemory32 = 37,
  DecrementMemory32 = 38,
  NotRegister32 = 39,
  ShiftRegister16 = 40,
}

const INLINE_HANDLERS = new Map<InstructionRun, number>([
  [movRegister32, InlineHandler.MovRegister32],
  [movRegister64, InlineHandler.MovRegister64],
  [movImmediate32, InlineHandler.MovImmediate32],
  [movLoad32, InlineHandler.MovLoad32],
  [movLoad64, InlineHandler.MovLoad64],
  [movStore32, InlineHandler.MovStore32],
  [movStore64, InlineHandler.MovStore64],
  [aluRegister, InlineHandler.AluRegister],
  [aluImmediate, InlineHandler.AluImmediate],
  [aluLoad, InlineHandler.AluLoad],
  [incrementRegister32, InlineHandler.IncrementRegister32],
  [decrementRegister32, InlineHandler.DecrementRegister32],
  [testRegister, InlineHandler.TestRegister],
  [pushRegister32, InlineHandler.PushRegister32],
  [popRegister32, InlineHandler.PopRegister32],
  [callRelative32, InlineHandler.CallRelative32],
  [return32, InlineHandler.Return32],
  [jcc, InlineHandler.Jcc],
  [jmp, InlineHandler.Jmp],
  [conditionalJump32, InlineHandler.ConditionalJump32],
  [jump32, InlineHandler.Jump32],
  [aluStore32, InlineHandler.AluStore32],
  [movLoad8, InlineHandler.MovLoad8],
  [movStore8, InlineHandler.MovStore8],
  [movzxLoad32, InlineHandler.MovzxLoad32],
  [shiftRegister32, InlineHandler.ShiftRegister32],
  [movzxRegister32, InlineHandler.MovzxRegister32],
  [lea32, InlineHandler.Lea32],
  [imulRegister32, InlineHandler.ImulRegister32],
  [conditionalMove32, InlineHandler.ConditionalMove32],
  [setConditionRegister, InlineHandler.SetConditionRegister],
  [movLoad16, InlineHandler.MovLoad16],
  [movStore16, InlineHandler.MovStore16],
  [movStoreImmediate32, InlineHandler.MovStoreImmediate32],
  [aluRegister8, InlineHandler.AluRegister8],
  [testByte, InlineHandler.TestByte],
  [incrementMemory32, InlineHandler.IncrementMemory32],
  [decrementMemory32, InlineHandler.DecrementMemory32],
  [notRegister32, InlineHandler.NotRegister32],
  [shiftRegister16, InlineHandler.ShiftRegister16],
]);

/** The `InlineHandler` number of a handler, or `InlineHandler.None`. */
export function inlineHandlerOf(run: InstructionRun): number {
  return INLINE_HANDLERS.get(run) ?? InlineHandler.None;
}
