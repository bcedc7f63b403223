import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { Flag, Reg, Vector } from '../state/registers.js';

function setAl(cpu: Cpu, value: number): void {
  cpu.low[Reg.RAX] = (cpu.low[Reg.RAX]! & ~0xff) | (value & 0xff);
}

/** DAA, per the SDM's pseudocode. */
export function daa(cpu: Cpu, _instruction: Instruction): void {
  const oldAl = cpu.low[Reg.RAX]! & 0xff;
  const oldCarry = cpu.flags.cf();
  let al = oldAl;
  let carry = 0;
  let adjust = 0;
  if ((al & 0xf) > 9 || cpu.flags.af() !== 0) {
    carry = oldCarry | (al + 6 > 0xff ? 1 : 0);
    al = (al + 6) & 0xff;
    adjust = Flag.AF;
  }
  if (oldAl > 0x99 || oldCarry !== 0) {
    al = (al + 0x60) & 0xff;
    carry = 1;
  } else carry = 0;
  setAl(cpu, al);
  cpu.flags.setResult(1, al, 0, (carry !== 0 ? Flag.CF : 0) | adjust);
}

export function das(cpu: Cpu, _instruction: Instruction): void {
  const oldAl = cpu.low[Reg.RAX]! & 0xff;
  const oldCarry = cpu.flags.cf();
  let al = oldAl;
  let carry = 0;
  let adjust = 0;
  if ((al & 0xf) > 9 || cpu.flags.af() !== 0) {
    carry = oldCarry | (al < 6 ? 1 : 0);
    al = (al - 6) & 0xff;
    adjust = Flag.AF;
  }
  if (oldAl > 0x99 || oldCarry !== 0) {
    al = (al - 0x60) & 0xff;
    carry = 1;
  }
  setAl(cpu, al);
  cpu.flags.setResult(1, al, 0, (carry !== 0 ? Flag.CF : 0) | adjust);
}

export function aaa(cpu: Cpu, _instruction: Instruction): void {
  let ax = cpu.low[Reg.RAX]! & 0xffff;
  let adjust = 0;
  if ((ax & 0xf) > 9 || cpu.flags.af() !== 0) {
    ax = (ax + 0x106) & 0xffff;
    adjust = Flag.AF | Flag.CF;
  }
  ax &= 0xff0f;
  cpu.low[Reg.RAX] = (cpu.low[Reg.RAX]! & ~0xffff) | ax;
  cpu.flags.setResult(1, ax & 0xff, 0, adjust);
}

export function aas(cpu: Cpu, _instruction: Instruction): void {
  let ax = cpu.low[Reg.RAX]! & 0xffff;
  let adjust = 0;
  if ((ax & 0xf) > 9 || cpu.flags.af() !== 0) {
    // AX := AX - 6 (a borrow reaches AH), then AH := AH - 1, as the SDM's pseudocode says.
    ax = (ax - 6) & 0xffff;
    ax = (ax - 0x100) & 0xffff;
    adjust = Flag.AF | Flag.CF;
  }
  ax &= 0xff0f;
  cpu.low[Reg.RAX] = (cpu.low[Reg.RAX]! & ~0xffff) | ax;
  cpu.flags.setResult(1, ax & 0xff, 0, adjust);
}

export function aam(cpu: Cpu, instruction: Instruction): void {
  const base = instruction.immediate & 0xff;
  if (base === 0) cpu.fault(Vector.DE);
  const al = cpu.low[Reg.RAX]! & 0xff;
  const result = ((Math.floor(al / base) & 0xff) << 8) | (al % base);
  cpu.low[Reg.RAX] = (cpu.low[Reg.RAX]! & ~0xffff) | result;
  cpu.flags.setResult(1, result & 0xff, 0, 0);
}

export function aad(cpu: Cpu, instruction: Instruction): void {
  const base = instruction.immediate & 0xff;
  const ax = cpu.low[Reg.RAX]!;
  const al = ((ax & 0xff) + ((ax >> 8) & 0xff) * base) & 0xff;
  cpu.low[Reg.RAX] = (cpu.low[Reg.RAX]! & ~0xffff) | al;
  cpu.flags.setResult(1, al, 0, 0);
}

export function salc(cpu: Cpu, _instruction: Instruction): void {
  setAl(cpu, cpu.flags.cf() !== 0 ? 0xff : 0);
}
