import type { AccessSize } from '@tsvirt/interfaces';
import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { Cr0, Flag, Reg, Vector } from '../state/registers.js';

/**
 * Faults with #GP(0) unless the current privilege may use ports
 * `[port, port + size)`: CPL ≤ IOPL, or the TSS I/O bitmap allows them.
 */
export function checkIoPermission(cpu: Cpu, port: number, size: number): void {
  if ((cpu.cr0 & Cr0.PE) === 0) return;
  const iopl = (cpu.flags.bits >> 12) & 3;
  if (cpu.cpl <= iopl && (cpu.flags.bits & Flag.VM) === 0) return;
  const type = cpu.trAttributes & 0xf;
  if ((type !== 0x9 && type !== 0xb) || cpu.trLimit < 0x67) cpu.fault(Vector.GP, 0);
  const bitmap = cpu.supervisorRead(cpu.isLongMode() ? cpu.trBase + 0x66 : (cpu.trBase + 0x66) >>> 0, 2);
  const offset = bitmap + (port >> 3);
  if (offset + 1 > cpu.trLimit) cpu.fault(Vector.GP, 0);
  const at = cpu.isLongMode() ? cpu.trBase + offset : (cpu.trBase + offset) >>> 0;
  const bits = cpu.supervisorRead(at, 2);
  if ((bits & (((1 << size) - 1) << (port & 7))) !== 0) cpu.fault(Vector.GP, 0);
}

export function portRead(cpu: Cpu, port: number, size: AccessSize): number {
  if (cpu.breakpointMask > 0xff) cpu.checkIoBreakpoints(port & 0xffff, size);
  const value = cpu.io.read(port & 0xffff, size);
  cpu.noteDeviceAccess();
  return value;
}

export function portWrite(cpu: Cpu, port: number, size: AccessSize, value: number): void {
  if (cpu.breakpointMask > 0xff) cpu.checkIoBreakpoints(port & 0xffff, size);
  const masked = size === 4 ? value >>> 0 : value & (size === 1 ? 0xff : 0xffff);
  cpu.io.write(port & 0xffff, size, masked);
  cpu.noteDeviceAccess();
}

function ioSize(instruction: Instruction): AccessSize {
  const size = instruction.operandSize;
  return size === 1 ? 1 : size === 2 ? 2 : 4;
}

export function inPort(cpu: Cpu, instruction: Instruction): void {
  const size = ioSize(instruction);
  const port = instruction.entry.operands[1] === 'DX' ? cpu.low[Reg.RDX]! & 0xffff : instruction.immediate & 0xff;
  checkIoPermission(cpu, port, size);
  const value = portRead(cpu, port, size);
  cpu.writeRegister(Reg.RAX, size, value | 0, 0);
}

export function outPort(cpu: Cpu, instruction: Instruction): void {
  const size = ioSize(instruction);
  const port = instruction.entry.operands[0] === 'DX' ? cpu.low[Reg.RDX]! & 0xffff : instruction.immediate & 0xff;
  checkIoPermission(cpu, port, size);
  portWrite(cpu, port, size, cpu.low[Reg.RAX]!);
}
