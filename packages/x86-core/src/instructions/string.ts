import type { AccessSize } from '@tsvirt/interfaces';
import type { CpuCore as Cpu } from '../cpu-core.js';
import { type Instruction, Repeat } from '../decoder/instruction.js';
import { Flag, Reg, Seg } from '../state/registers.js';
import { arithmetic } from './arithmetic.js';
import { checkIoPermission, portRead, portWrite } from './io.js';
import { readAddressRegister, wrapAddress, writeAddressRegister } from './operands.js';

/** Iterations one execution of a REP instruction performs before letting interrupts in. */
const CHUNK = 1024;

function sourceSegment(instruction: Instruction): number {
  return instruction.segmentOverride >= 0 ? instruction.segmentOverride : Seg.DS;
}

function step(cpu: Cpu, size: number): number {
  return (cpu.flags.bits & Flag.DF) !== 0 ? -size : size;
}

function advance(cpu: Cpu, register: number, addressSize: number, delta: number): void {
  writeAddressRegister(cpu, register, addressSize, wrapAddress(readAddressRegister(cpu, register, addressSize) + delta, addressSize));
}

/**
 * Runs `body` once, or under REP for rCX iterations in chunks (re-executing
 * the instruction until done). `compare` makes REPE/REPNE stop on ZF.
 */
function repeat(cpu: Cpu, instruction: Instruction, body: (cpu: Cpu, instruction: Instruction) => void, compare: boolean): void {
  if (instruction.repeat === Repeat.None) {
    body(cpu, instruction);
    return;
  }
  const addressSize = instruction.addressSize;
  let count = readAddressRegister(cpu, Reg.RCX, addressSize);
  for (let done = 0; count !== 0; done++) {
    if (done === CHUNK) {
      cpu.rip = cpu.currentRip;
      return;
    }
    body(cpu, instruction);
    count = wrapAddress(count - 1, addressSize);
    writeAddressRegister(cpu, Reg.RCX, addressSize, count);
    if (compare) {
      const zero = cpu.flags.zf() !== 0;
      if (instruction.repeat === Repeat.Repeat ? !zero : zero) return;
    }
  }
}

function movsOnce(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const addressSize = instruction.addressSize;
  const value = cpu.read(sourceSegment(instruction), readAddressRegister(cpu, Reg.RSI, addressSize), size);
  cpu.write(Seg.ES, readAddressRegister(cpu, Reg.RDI, addressSize), size, value, cpu.valueHigh);
  const delta = step(cpu, size);
  advance(cpu, Reg.RSI, addressSize, delta);
  advance(cpu, Reg.RDI, addressSize, delta);
}

function cmpsOnce(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const addressSize = instruction.addressSize;
  const first = cpu.read(sourceSegment(instruction), readAddressRegister(cpu, Reg.RSI, addressSize), size);
  const firstHigh = cpu.valueHigh;
  const second = cpu.read(Seg.ES, readAddressRegister(cpu, Reg.RDI, addressSize), size);
  arithmetic(cpu, 7, size, first, firstHigh, second, cpu.valueHigh);
  const delta = step(cpu, size);
  advance(cpu, Reg.RSI, addressSize, delta);
  advance(cpu, Reg.RDI, addressSize, delta);
}

function stosOnce(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const addressSize = instruction.addressSize;
  const value = cpu.readRegister(Reg.RAX, size);
  cpu.write(Seg.ES, readAddressRegister(cpu, Reg.RDI, addressSize), size, value, cpu.valueHigh);
  advance(cpu, Reg.RDI, addressSize, step(cpu, size));
}

function lodsOnce(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const addressSize = instruction.addressSize;
  const value = cpu.read(sourceSegment(instruction), readAddressRegister(cpu, Reg.RSI, addressSize), size);
  cpu.writeRegister(Reg.RAX, size, value, cpu.valueHigh);
  advance(cpu, Reg.RSI, addressSize, step(cpu, size));
}

function scasOnce(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.operandSize;
  const addressSize = instruction.addressSize;
  const accumulator = cpu.readRegister(Reg.RAX, size);
  const accumulatorHigh = cpu.valueHigh;
  const value = cpu.read(Seg.ES, readAddressRegister(cpu, Reg.RDI, addressSize), size);
  arithmetic(cpu, 7, size, accumulator, accumulatorHigh, value, cpu.valueHigh);
  advance(cpu, Reg.RDI, addressSize, step(cpu, size));
}

function ioSize(instruction: Instruction): AccessSize {
  return instruction.operandSize === 1 ? 1 : instruction.operandSize === 2 ? 2 : 4;
}

function insOnce(cpu: Cpu, instruction: Instruction): void {
  const size = ioSize(instruction);
  const addressSize = instruction.addressSize;
  const offset = readAddressRegister(cpu, Reg.RDI, addressSize);
  // Check the destination before the port read, so a fault does not lose device data.
  cpu.linear(Seg.ES, offset, size, true);
  const value = portRead(cpu, cpu.low[Reg.RDX]! & 0xffff, size);
  cpu.write(Seg.ES, offset, size, value | 0, 0);
  advance(cpu, Reg.RDI, addressSize, step(cpu, size));
}

function outsOnce(cpu: Cpu, instruction: Instruction): void {
  const size = ioSize(instruction);
  const addressSize = instruction.addressSize;
  const value = cpu.read(sourceSegment(instruction), readAddressRegister(cpu, Reg.RSI, addressSize), size);
  portWrite(cpu, cpu.low[Reg.RDX]! & 0xffff, size, value);
  advance(cpu, Reg.RSI, addressSize, step(cpu, size));
}

export function movs(cpu: Cpu, instruction: Instruction): void {
  repeat(cpu, instruction, movsOnce, false);
}
export function cmps(cpu: Cpu, instruction: Instruction): void {
  repeat(cpu, instruction, cmpsOnce, true);
}
export function stos(cpu: Cpu, instruction: Instruction): void {
  repeat(cpu, instruction, stosOnce, false);
}
export function lods(cpu: Cpu, instruction: Instruction): void {
  repeat(cpu, instruction, lodsOnce, false);
}
export function scas(cpu: Cpu, instruction: Instruction): void {
  repeat(cpu, instruction, scasOnce, true);
}
export function ins(cpu: Cpu, instruction: Instruction): void {
  checkIoPermission(cpu, cpu.low[Reg.RDX]! & 0xffff, ioSize(instruction));
  repeat(cpu, instruction, insOnce, false);
}
export function outs(cpu: Cpu, instruction: Instruction): void {
  checkIoPermission(cpu, cpu.low[Reg.RDX]! & 0xffff, ioSize(instruction));
  repeat(cpu, instruction, outsOnce, false);
}
