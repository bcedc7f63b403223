import type { CpuCore as Cpu } from '../cpu-core.js';
import { type Instruction, OperandKind } from '../decoder/instruction.js';
import { Conversion } from '../fpu/sse-codes.js';
import { MEMORY_LANES, RESULT_LANES, type SseState } from '../fpu/sse-state.js';
import { FLOAT32, FLOAT64, sseConvertFloat, sseFloatToInteger, sseIntegerToFloat } from '../fpu/softfloat/index.js';
import { memoryLinear } from './operands.js';
import { commitResult, enterMmx, enterSse, readMmx, readXmmSource, recordSimdExceptions, writeMmx } from './simd-support.js';

/*
 * CVT* between float32, float64 and 32/64-bit integers (SSE, SSE2), exact
 * through softfloat under MXCSR. The MMX forms (CVTPI2PS with an MMX source,
 * CVTPS2PI, CVTPD2PI, …) switch the x87 to MMX state as MMX instructions do.
 * Results are built in RESULT_LANES and committed after the exception check.
 */

/** float32 lane → int32 (or int64 with `bits` 64) into result; returns the flags. */
function singleToInteger(sse: SseState, lane: number, bits: number, truncate: boolean): number {
  return sseFloatToInteger(FLOAT32, bits, 0, sse.lanes[lane]!, sse.mxcsr, truncate, sse.result, sse.scratch);
}

function doubleToInteger(sse: SseState, lane: number, bits: number, truncate: boolean): number {
  return sseFloatToInteger(FLOAT64, bits, sse.lanes[lane + 1]!, sse.lanes[lane]!, sse.mxcsr, truncate, sse.result, sse.scratch);
}

/** `count` float32 or float64 elements from `from` to int32 lanes of RESULT_LANES; returns the flags. */
function floatsToInt32s(sse: SseState, from: number, count: number, double: boolean, truncate: boolean): number {
  let flags = 0;
  for (let index = 0; index < count; index++) {
    flags |= double ? doubleToInteger(sse, from + index * 2, 32, truncate) : singleToInteger(sse, from + index, 32, truncate);
    sse.lanes[RESULT_LANES + index] = sse.result.low;
  }
  return flags;
}

/** `count` int32 lanes from `from` to float32 or float64 elements of RESULT_LANES; returns the flags. */
function int32sToFloats(sse: SseState, from: number, count: number, double: boolean): number {
  let flags = 0;
  const lanes = sse.lanes;
  for (let index = 0; index < count; index++) {
    flags |= sseIntegerToFloat(double ? FLOAT64 : FLOAT32, 32, 0, lanes[from + index]! | 0, sse.mxcsr, sse.result, sse.scratch);
    if (double) {
      lanes[RESULT_LANES + index * 2] = sse.result.low;
      lanes[RESULT_LANES + index * 2 + 1] = sse.result.high;
    } else lanes[RESULT_LANES + index] = sse.result.low;
  }
  return flags;
}

/** `count` float elements between formats (CVTPS2PD, CVTPD2PS, CVTSS2SD, CVTSD2SS) into RESULT_LANES; returns the flags. */
function convertFloats(sse: SseState, from: number, count: number, fromDouble: boolean): number {
  let flags = 0;
  const lanes = sse.lanes;
  for (let index = 0; index < count; index++) {
    if (fromDouble) {
      flags |= sseConvertFloat(FLOAT64, lanes[from + index * 2 + 1]!, lanes[from + index * 2]!, sse.mxcsr, sse.result, sse.scratch);
      lanes[RESULT_LANES + index] = sse.result.low;
    } else {
      flags |= sseConvertFloat(FLOAT32, 0, lanes[from + index]!, sse.mxcsr, sse.result, sse.scratch);
      lanes[RESULT_LANES + index * 2] = sse.result.low;
      lanes[RESULT_LANES + index * 2 + 1] = sse.result.high;
    }
  }
  return flags;
}

/** Reads the MMX/m64 source of CVTPI2PS/CVTPI2PD into MEMORY_LANES (an MMX register source switches to MMX state). */
function readMmxPair(cpu: Cpu, instruction: Instruction, sse: SseState): void {
  let low: number;
  if (instruction.kind1 === OperandKind.Register) {
    enterMmx(cpu);
    low = readMmx(cpu, instruction.register1);
  } else {
    low = cpu.readLinear(memoryLinear(cpu, instruction, 8, false), 8);
  }
  sse.lanes[MEMORY_LANES] = low;
  sse.lanes[MEMORY_LANES + 1] = cpu.valueHigh;
}

/** Reads the r/m32 or r/m64 source of CVTSI2SS/SD: low half returned, high in `cpu.valueHigh`. */
function readInteger(cpu: Cpu, instruction: Instruction, size: number): number {
  if (instruction.kind1 === OperandKind.Register) return cpu.readRegister(instruction.register1, size);
  return cpu.readLinear(memoryLinear(cpu, instruction, size, false), size);
}

/** The CVT* instructions (`sub` a Conversion, plus Conversion.truncate for the CVTT… forms). */
export function sseConvert(cpu: Cpu, instruction: Instruction): void {
  const sse = enterSse(cpu);
  const lanes = sse.lanes;
  const truncate = (instruction.sub & Conversion.truncate) !== 0;
  const to = instruction.register0 * 4;
  switch (instruction.sub & ~Conversion.truncate) {
    case Conversion.int32PairToSingle:
      readMmxPair(cpu, instruction, sse);
      recordSimdExceptions(cpu, int32sToFloats(sse, MEMORY_LANES, 2, false));
      lanes[to] = lanes[RESULT_LANES]!;
      lanes[to + 1] = lanes[RESULT_LANES + 1]!;
      return;
    case Conversion.int32PairToDouble:
      readMmxPair(cpu, instruction, sse);
      int32sToFloats(sse, MEMORY_LANES, 2, true);
      commitResult(lanes, to, 4);
      return;
    case Conversion.singlePairToInt32: {
      const from = readXmmSource(cpu, instruction, 8);
      const flags = floatsToInt32s(sse, from, 2, false, truncate);
      toMmx(cpu, instruction, flags);
      return;
    }
    case Conversion.doubleToInt32Pair: {
      const from = readXmmSource(cpu, instruction, 16);
      const flags = floatsToInt32s(sse, from, 2, true, truncate);
      toMmx(cpu, instruction, flags);
      return;
    }
    case Conversion.integerToSingle:
    case Conversion.integerToDouble: {
      const size = instruction.operandSize;
      const low = readInteger(cpu, instruction, size);
      const double = (instruction.sub & ~Conversion.truncate) === Conversion.integerToDouble;
      recordSimdExceptions(cpu, sseIntegerToFloat(double ? FLOAT64 : FLOAT32, size * 8, cpu.valueHigh, low, sse.mxcsr, sse.result, sse.scratch));
      lanes[to] = sse.result.low;
      if (double) lanes[to + 1] = sse.result.high;
      return;
    }
    case Conversion.singleToInteger:
    case Conversion.doubleToInteger: {
      const double = (instruction.sub & ~Conversion.truncate) === Conversion.doubleToInteger;
      const from = readXmmSource(cpu, instruction, double ? 8 : 4);
      const bits = instruction.operandSize * 8;
      recordSimdExceptions(cpu, double ? doubleToInteger(sse, from, bits, truncate) : singleToInteger(sse, from, bits, truncate));
      cpu.writeRegister(instruction.register0, instruction.operandSize, sse.result.low | 0, sse.result.high | 0);
      return;
    }
    case Conversion.singlesToDoubles:
      recordSimdExceptions(cpu, convertFloats(sse, readXmmSource(cpu, instruction, 8), 2, false));
      commitResult(lanes, to, 4);
      return;
    case Conversion.doublesToSingles:
      recordSimdExceptions(cpu, convertFloats(sse, readXmmSource(cpu, instruction, 16), 2, true));
      commitLowHalf(lanes, to);
      return;
    case Conversion.singleToDouble:
      recordSimdExceptions(cpu, convertFloats(sse, readXmmSource(cpu, instruction, 4), 1, false));
      lanes[to] = lanes[RESULT_LANES]!;
      lanes[to + 1] = lanes[RESULT_LANES + 1]!;
      return;
    case Conversion.doubleToSingle:
      recordSimdExceptions(cpu, convertFloats(sse, readXmmSource(cpu, instruction, 8), 1, true));
      lanes[to] = lanes[RESULT_LANES]!;
      return;
    case Conversion.int32sToSingles:
      recordSimdExceptions(cpu, int32sToFloats(sse, readXmmSource(cpu, instruction, 16), 4, false));
      commitResult(lanes, to, 4);
      return;
    case Conversion.singlesToInt32s:
      recordSimdExceptions(cpu, floatsToInt32s(sse, readXmmSource(cpu, instruction, 16), 4, false, truncate));
      commitResult(lanes, to, 4);
      return;
    case Conversion.int32sToDoubles:
      int32sToFloats(sse, readXmmSource(cpu, instruction, 8), 2, true);
      commitResult(lanes, to, 4);
      return;
    default: /* doublesToInt32s */
      recordSimdExceptions(cpu, floatsToInt32s(sse, readXmmSource(cpu, instruction, 16), 2, true, truncate));
      commitLowHalf(lanes, to);
  }
}

/** CVTPS2PI/CVTPD2PI: the two int32 results to MMX register `register0` after the exception check. */
function toMmx(cpu: Cpu, instruction: Instruction, flags: number): void {
  const lanes = cpu.sse.lanes;
  enterMmx(cpu);
  recordSimdExceptions(cpu, flags);
  writeMmx(cpu, instruction.register0, lanes[RESULT_LANES]!, lanes[RESULT_LANES + 1]!);
}


/** Two result lanes to the low half; the high half becomes zero (CVTPD2PS, CVTPD2DQ). */
function commitLowHalf(lanes: Uint32Array, to: number): void {
  lanes[to] = lanes[RESULT_LANES]!;
  lanes[to + 1] = lanes[RESULT_LANES + 1]!;
  lanes[to + 2] = 0;
  lanes[to + 3] = 0;
}
