import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { FpuStatus, type FpuState } from '../fpu/fpu-state.js';
import { X87Environment } from '../fpu/x87-codes.js';
import { isRealOrVirtual8086 } from '../system/segmentation.js';
import { memoryLinear } from './operands.js';
import { normalizeControlWord } from './x87-control.js';
import { enterX87, releaseErrorSignal } from './x87-support.js';


/**
 * FLDENV, FNSTENV, FRSTOR, FNSAVE: the 14-byte (16-bit operand size) or
 * 28-byte environment in the real-mode or protected-mode layout (SDM vol. 1,
 * figures 8-9 to 8-12), followed for FSAVE/FRSTOR by ST(0)…ST(7), 10 bytes each.
 * 64-bit code uses the 32-bit protected-mode layout.
 */
export function x87Environment(cpu: Cpu, instruction: Instruction): void {
  const fpu = enterX87(cpu, instruction);
  const operation = instruction.sub & 0xff;
  const small = instruction.operandSize === 2;
  const environmentSize = small ? 14 : 28;
  const whole = operation >= X87Environment.restore ? environmentSize + 80 : environmentSize;
  const real = isRealOrVirtual8086(cpu);
  const linear = memoryLinear(cpu, instruction, whole, operation === X87Environment.store || operation === X87Environment.save);
  if (operation === X87Environment.store || operation === X87Environment.save) {
    storeEnvironment(cpu, fpu, linear, small, real);
    if (operation === X87Environment.save) {
      for (let index = 0; index < 8; index++) {
        const register = fpu.physical(index);
        const at = linear + environmentSize + index * 10;
        cpu.writeLinear(at, 4, fpu.low[register]! | 0, 0);
        cpu.writeLinear(at + 4, 4, fpu.high[register]! | 0, 0);
        cpu.writeLinear(at + 8, 2, fpu.signExponent[register]!, 0);
      }
      fpu.initialize();
      releaseErrorSignal(cpu);
    } else {
      // FNSTENV masks every exception after storing the environment.
      fpu.control |= FpuStatus.exceptions;
    }
    return;
  }
  loadEnvironment(cpu, fpu, linear, small, real, operation === X87Environment.restore ? environmentSize : -1);
  releaseErrorSignal(cpu);
}

/** Writes field `index` of the environment (2 bytes each in the 14-byte layout, 4 in the 28-byte one). */
function writeField(cpu: Cpu, linear: number, small: boolean, index: number, value: number): void {
  if (small) cpu.writeLinear(linear + index * 2, 2, value & 0xffff, 0);
  else cpu.writeLinear(linear + index * 4, 4, value | 0, 0);
}

function readField(cpu: Cpu, linear: number, small: boolean, index: number): number {
  return small ? cpu.readLinear(linear + index * 2, 2) : cpu.readLinear(linear + index * 4, 4) >>> 0;
}

function storeEnvironment(cpu: Cpu, fpu: FpuState, linear: number, small: boolean, real: boolean): void {
  // The reserved upper halves of the 32-bit layout read back as ones on the processors checked (the oracle test).
  const reserved = small ? 0 : 0xffff0000;
  writeField(cpu, linear, small, 0, fpu.control | reserved);
  writeField(cpu, linear, small, 1, fpu.statusWord() | reserved);
  writeField(cpu, linear, small, 2, fpu.tagWord() | reserved);
  const opcode = fpu.opcode & 0x7ff;
  if (real) {
    // Real mode keeps linear pointers: the low 16 bits, then the rest above the opcode (bits 12 and up).
    const instructionPointer = (fpu.instructionSelector * 16 + fpu.instructionOffset) >>> 0;
    const dataPointer = (fpu.dataSelector * 16 + fpu.dataOffset) >>> 0;
    writeField(cpu, linear, small, 3, (instructionPointer & 0xffff) | reserved);
    writeField(cpu, linear, small, 4, ((instructionPointer >>> 4) & (small ? 0xf000 : 0x0ffff000)) | opcode);
    writeField(cpu, linear, small, 5, (dataPointer & 0xffff) | reserved);
    writeField(cpu, linear, small, 6, (dataPointer >>> 4) & (small ? 0xf000 : 0x0ffff000));
    return;
  }
  writeField(cpu, linear, small, 3, fpu.instructionOffset);
  writeField(cpu, linear, small, 4, small ? fpu.instructionSelector : fpu.instructionSelector | (opcode << 16));
  writeField(cpu, linear, small, 5, fpu.dataOffset);
  writeField(cpu, linear, small, 6, fpu.dataSelector | reserved);
}

function loadEnvironment(cpu: Cpu, fpu: FpuState, linear: number, small: boolean, real: boolean, registersAt: number): void {
  // Everything is read before anything changes, so a fault leaves the FPU as it was.
  const control = readField(cpu, linear, small, 0) & 0xffff;
  const status = readField(cpu, linear, small, 1) & 0xffff;
  const tags = readField(cpu, linear, small, 2) & 0xffff;
  const instructionWord = readField(cpu, linear, small, 3);
  const selectorWord = readField(cpu, linear, small, 4);
  const dataWord = readField(cpu, linear, small, 5);
  const dataSelectorWord = readField(cpu, linear, small, 6);
  const scratch = fpu.restoreScratch;
  if (registersAt >= 0) {
    // The register image is read in full into scratch before any register changes.
    for (let index = 0; index < 8; index++) {
      const at = linear + registersAt + index * 10;
      scratch[index * 3] = cpu.readLinear(at, 4);
      scratch[index * 3 + 1] = cpu.readLinear(at + 4, 4);
      scratch[index * 3 + 2] = cpu.readLinear(at + 8, 2);
    }
    // ST(i) is relative to the TOP being loaded.
    const top = (status >> 11) & 7;
    for (let index = 0; index < 8; index++) {
      const register = (top + index) & 7;
      fpu.low[register] = scratch[index * 3]!;
      fpu.high[register] = scratch[index * 3 + 1]!;
      fpu.signExponent[register] = scratch[index * 3 + 2]!;
    }
  }
  fpu.control = normalizeControlWord(control);
  fpu.setStatusWord(status);
  if ((fpu.status & ~fpu.control & FpuStatus.exceptions) !== 0) fpu.status |= FpuStatus.ES | FpuStatus.B;
  else fpu.status &= ~(FpuStatus.ES | FpuStatus.B);
  fpu.setTagWord(tags);
  if (real) {
    fpu.instructionOffset = (instructionWord & 0xffff) | (((selectorWord & 0xfffff000) << 4) >>> 0);
    fpu.opcode = selectorWord & 0x7ff;
    fpu.dataOffset = (dataWord & 0xffff) | (((dataSelectorWord & 0xfffff000) << 4) >>> 0);
    fpu.instructionSelector = 0;
    fpu.dataSelector = 0;
    return;
  }
  fpu.instructionOffset = instructionWord;
  fpu.instructionSelector = selectorWord & 0xffff;
  if (!small) fpu.opcode = (selectorWord >>> 16) & 0x7ff;
  fpu.dataOffset = dataWord;
  fpu.dataSelector = dataSelectorWord & 0xffff;
}
