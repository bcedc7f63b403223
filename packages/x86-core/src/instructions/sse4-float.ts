import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { SseForm } from '../fpu/sse-codes.js';
import { COPY_LANES, RESULT_LANES, type SseState } from '../fpu/sse-state.js';
import {
  Exception, extendedRoundToInteger, extendedToIeee, FLOAT32, FLOAT64, type IeeeFormat, ieeeToExtended, sseArithmetic as softArithmetic, SseOperation,
} from '../fpu/softfloat/index.js';
import { commitResult, enterSse, readXmmSource, recordSimdExceptions } from './simd-support.js';

/*
 * SSE4.1 floating point: ROUNDPS/PD/SS/SD and DPPS/DPPD, exact through
 * softfloat (the blends, INSERTPS and EXTRACTPS are in sse-shuffle.ts).
 */

/** Every x87 exception masked, 64-bit precision: the control word for rounding to an integer in the extended format. */
const ROUND_CONTROL = 0x033f;

/** Rounds the float element at `lane` to an integer (rounding control `rounding`) into RESULT_LANES + `at`; returns IE and PE. */
function roundElement(sse: SseState, format: IeeeFormat, lane: number, at: number, rounding: number): number {
  const lanes = sse.lanes;
  const double = format === FLOAT64;
  const high = double ? lanes[lane + 1]! : 0;
  const low = lanes[lane]!;
  const signHigh = double ? high : low;
  const field = double ? (high >>> 20) & 0x7ff : (low >>> 23) & 0xff;
  const fractionZero = double ? (high & 0xfffff) === 0 && low === 0 : (low & 0x7fffff) === 0;
  let flags = 0;
  if (field === format.maxField && !fractionZero) {
    // A NaN is returned quiet; a signaling one is invalid.
    const quietBit = double ? high & 0x80000 : low & 0x400000;
    if (quietBit === 0) flags = Exception.invalid;
    lanes[RESULT_LANES + at] = double ? low : (low | 0x400000) >>> 0;
    if (double) lanes[RESULT_LANES + at + 1] = (high | 0x80000) >>> 0;
    return flags;
  }
  if (field === 0 && (sse.mxcsr & 0x40) !== 0) {
    // DAZ: a denormal is a zero of its sign.
    lanes[RESULT_LANES + at] = double ? 0 : (signHigh & 0x80000000) >>> 0;
    if (double) lanes[RESULT_LANES + at + 1] = (signHigh & 0x80000000) >>> 0;
    return 0;
  }
  const result = sse.result;
  const wide = sse.scratch.a;
  ieeeToExtended(format, high, low, result);
  wide.signExponent = result.signExponent;
  wide.high = result.high;
  wide.low = result.low;
  flags = extendedRoundToInteger(wide, ROUND_CONTROL | (rounding << 10), result) & Exception.precision;
  wide.signExponent = result.signExponent;
  wide.high = result.high;
  wide.low = result.low;
  // An integer taken from the format fits it exactly.
  extendedToIeee(wide, format, 0x1f80, result, true);
  lanes[RESULT_LANES + at] = result.low;
  if (double) lanes[RESULT_LANES + at + 1] = result.high;
  return flags;
}

/**
 * ROUNDPS/ROUNDPD/ROUNDSS/ROUNDSD (`sub` SseForm bits): imm8[1:0] is the
 * rounding control unless imm8[2] selects MXCSR.RC; imm8[3] suppresses the
 * precision exception. Denormals count as zero under DAZ; no DE is reported.
 */
export function sseRound(cpu: Cpu, instruction: Instruction): void {
  const sse = enterSse(cpu);
  const sub = instruction.sub;
  const packed = (sub & SseForm.packed) !== 0;
  const format = (sub & SseForm.double) !== 0 ? FLOAT64 : FLOAT32;
  const step = format === FLOAT64 ? 2 : 1;
  const from = readXmmSource(cpu, instruction, packed ? 16 : step * 4);
  const to = instruction.register0 * 4;
  const control = instruction.immediate;
  const rounding = (control & 4) !== 0 ? (sse.mxcsr >> 13) & 3 : control & 3;
  const count = packed ? 4 : step;
  let flags = 0;
  for (let lane = 0; lane < count; lane += step) flags |= roundElement(sse, format, from + lane, lane, rounding);
  if ((control & 8) !== 0) flags &= ~Exception.precision;
  recordSimdExceptions(cpu, flags);
  commitResult(sse.lanes, to, count);
}

/** One float32 (high 0) or float64 operation of lanes `a` and `b` into `into` (and `into + 1`); returns the flags. */
function operate(sse: SseState, operation: number, double: boolean, a: number, b: number, into: number): number {
  const lanes = sse.lanes;
  const flags = double
    ? softArithmetic(operation, FLOAT64, lanes[a + 1]!, lanes[a]!, lanes[b + 1]!, lanes[b]!, sse.mxcsr, sse.result, sse.scratch)
    : softArithmetic(operation, FLOAT32, 0, lanes[a]!, 0, lanes[b]!, sse.mxcsr, sse.result, sse.scratch);
  lanes[into] = sse.result.low;
  if (double) lanes[into + 1] = sse.result.high;
  return flags;
}

/**
 * DPPS/DPPD (`sub` SseForm.double): the products selected by imm8[7:4]
 * (imm8[5:4] for DPPD; the others are +0.0) are summed pairwise, as the
 * SDM's pseudo-code orders it, each step rounded; the sum goes to the
 * elements selected by imm8[3:0] (imm8[1:0]), +0.0 to the others. The SDM
 * checks exceptions per operation in execution order, so each stage
 * (products, pair sums, final sum) may trap before the next.
 */
export function sseDotProduct(cpu: Cpu, instruction: Instruction): void {
  const sse = enterSse(cpu);
  const double = (instruction.sub & SseForm.double) !== 0;
  const from = readXmmSource(cpu, instruction, 16);
  const to = instruction.register0 * 4;
  const control = instruction.immediate;
  const lanes = sse.lanes;
  const step = double ? 2 : 1;
  let flags = 0;
  // The products in COPY_LANES.
  for (let lane = 0; lane < 4; lane += step) {
    if ((control >> (4 + lane / step)) & 1) flags |= operate(sse, SseOperation.multiply, double, to + lane, from + lane, COPY_LANES + lane);
    else {
      lanes[COPY_LANES + lane] = 0;
      if (double) lanes[COPY_LANES + lane + 1] = 0;
    }
  }
  // Each stage is checked before the next runs: an unmasked exception traps with that stage's flags.
  recordSimdExceptions(cpu, flags);
  if (double) {
    recordSimdExceptions(cpu, operate(sse, SseOperation.add, true, COPY_LANES, COPY_LANES + 2, COPY_LANES));
  } else {
    flags = operate(sse, SseOperation.add, false, COPY_LANES, COPY_LANES + 1, COPY_LANES);
    flags |= operate(sse, SseOperation.add, false, COPY_LANES + 2, COPY_LANES + 3, COPY_LANES + 2);
    recordSimdExceptions(cpu, flags);
    recordSimdExceptions(cpu, operate(sse, SseOperation.add, false, COPY_LANES, COPY_LANES + 2, COPY_LANES));
  }
  for (let lane = 0; lane < 4; lane += step) {
    const selected = ((control >> (lane / step)) & 1) !== 0;
    lanes[RESULT_LANES + lane] = selected ? lanes[COPY_LANES]! : 0;
    if (double) lanes[RESULT_LANES + lane + 1] = selected ? lanes[COPY_LANES + 1]! : 0;
  }
  commitResult(lanes, to, 4);
}
