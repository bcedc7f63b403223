import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { MXCSR_MASK } from '../fpu/sse-state.js';
import { Vector } from '../state/registers.js';
import { memoryLinear } from './operands.js';
import { enterSse } from './simd-support.js';

/** LDMXCSR m32 (`sub` 0): reserved bits set raise #GP(0). STMXCSR m32 (`sub` 1). */
export function mxcsr(cpu: Cpu, instruction: Instruction): void {
  const sse = enterSse(cpu);
  if (instruction.sub === 0) {
    const value = cpu.readLinear(memoryLinear(cpu, instruction, 4, false), 4) >>> 0;
    if ((value & ~MXCSR_MASK) !== 0) cpu.fault(Vector.GP, 0);
    sse.mxcsr = value;
  } else {
    cpu.writeLinear(memoryLinear(cpu, instruction, 4, true), 4, sse.mxcsr, 0);
  }
}
