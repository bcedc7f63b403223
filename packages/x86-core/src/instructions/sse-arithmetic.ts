import type { CpuCore as Cpu } from '../cpu-core.js';
import type { Instruction } from '../decoder/instruction.js';
import { Horizontal, SseForm } from '../fpu/sse-codes.js';
import { RESULT_LANES, type SseState } from '../fpu/sse-state.js';
import { FLOAT32, FLOAT64, sseArithmetic as softArithmetic, sseCompareFlags as softCompareFlags, sseComparePredicate, SseOperation } from '../fpu/softfloat/index.js';
import { ARITHMETIC_FLAGS } from '../state/registers.js';
import { commitResult, enterSse, readXmmSource, recordSimdExceptions } from './simd-support.js';

/*
 * SSE/SSE2/SSE3 floating-point arithmetic, exact through softfloat under
 * MXCSR. Every element is computed into RESULT_LANES first: an unmasked
 * exception in any element traps (#XM) with the destination unchanged.
 */

/** The source operand's size in bytes for a `sub` with SseForm bits. */
function sourceSize(sub: number): number {
  return (sub & SseForm.packed) !== 0 ? 16 : (sub & SseForm.double) !== 0 ? 8 : 4;
}

/** Lanes (32-bit) the operation writes: 4 packed, 2 for a double scalar, 1 for a single scalar. */
function laneCount(sub: number): number {
  return (sub & SseForm.packed) !== 0 ? 4 : (sub & SseForm.double) !== 0 ? 2 : 1;
}


/** One element operation into RESULT_LANES + `lane`; returns its flags. */
function element(sse: SseState, operation: number, double: boolean, a: number, b: number, lane: number): number {
  const lanes = sse.lanes;
  const result = sse.result;
  let flags: number;
  if (double) {
    flags = softArithmetic(operation, FLOAT64, lanes[a + 1]!, lanes[a]!, lanes[b + 1]!, lanes[b]!, sse.mxcsr, result, sse.scratch);
    lanes[RESULT_LANES + lane + 1] = result.high;
  } else {
    flags = softArithmetic(operation, FLOAT32, 0, lanes[a]!, 0, lanes[b]!, sse.mxcsr, result, sse.scratch);
  }
  lanes[RESULT_LANES + lane] = result.low;
  return flags;
}

/**
 * ADD/SUB/MUL/DIV/MIN/MAX/SQRT PS/PD/SS/SD: `sub` is the softfloat
 * SseOperation plus SseForm bits. Scalar forms leave the upper elements alone.
 */
export function sseArithmetic(cpu: Cpu, instruction: Instruction): void {
  const sse = enterSse(cpu);
  const sub = instruction.sub;
  const double = (sub & SseForm.double) !== 0;
  const operation = sub & 7;
  const from = readXmmSource(cpu, instruction, sourceSize(sub));
  const to = instruction.register0 * 4;
  const count = laneCount(sub);
  const step = double ? 2 : 1;
  let flags = 0;
  for (let lane = 0; lane < count; lane += step) flags |= element(sse, operation, double, to + lane, from + lane, lane);
  recordSimdExceptions(cpu, flags);
  commitResult(sse.lanes, to, count);
}

/** CMPPS/CMPPD/CMPSS/CMPSD with predicate imm8[2:0]: each element becomes an all-ones or all-zero mask. */
export function sseCompare(cpu: Cpu, instruction: Instruction): void {
  const sse = enterSse(cpu);
  const sub = instruction.sub;
  const double = (sub & SseForm.double) !== 0;
  const from = readXmmSource(cpu, instruction, sourceSize(sub));
  const to = instruction.register0 * 4;
  const count = laneCount(sub);
  const predicate = instruction.immediate & 7;
  const lanes = sse.lanes;
  const result = sse.result;
  let flags = 0;
  for (let lane = 0; lane < count; lane += double ? 2 : 1) {
    if (double) {
      flags |= sseComparePredicate(predicate, FLOAT64, lanes[to + lane + 1]!, lanes[to + lane]!, lanes[from + lane + 1]!, lanes[from + lane]!, sse.mxcsr, result, sse.scratch);
      lanes[RESULT_LANES + lane + 1] = result.high;
    } else {
      flags |= sseComparePredicate(predicate, FLOAT32, 0, lanes[to + lane]!, 0, lanes[from + lane]!, sse.mxcsr, result, sse.scratch);
    }
    lanes[RESULT_LANES + lane] = result.low;
  }
  recordSimdExceptions(cpu, flags);
  commitResult(lanes, to, count);
}

/** COMISS/UCOMISS/COMISD/UCOMISD (`sub` SseForm.double, plus 1 for the ordered COMI forms): ZF, PF, CF; OF, SF, AF cleared. */
export function sseCompareFlags(cpu: Cpu, instruction: Instruction): void {
  const sse = enterSse(cpu);
  const sub = instruction.sub;
  const double = (sub & SseForm.double) !== 0;
  const from = readXmmSource(cpu, instruction, double ? 8 : 4);
  const to = instruction.register0 * 4;
  const lanes = sse.lanes;
  const outcome = double
    ? softCompareFlags(FLOAT64, lanes[to + 1]!, lanes[to]!, lanes[from + 1]!, lanes[from]!, sse.mxcsr, (sub & 1) !== 0, sse.result, sse.scratch)
    : softCompareFlags(FLOAT32, 0, lanes[to]!, 0, lanes[from]!, sse.mxcsr, (sub & 1) !== 0, sse.result, sse.scratch);
  recordSimdExceptions(cpu, outcome >>> 8);
  cpu.flags.setAll((cpu.flags.get() & ~ARITHMETIC_FLAGS) | (outcome & 0xff));
}

/**
 * SSE3 ADDSUBPS/PD (even elements subtract, odd ones add), HADDPS/PD and
 * HSUBPS/PD (adjacent pairs of the destination, then of the source). `sub`
 * is a Horizontal operation plus SseForm bits.
 */
export function sseHorizontal(cpu: Cpu, instruction: Instruction): void {
  const sse = enterSse(cpu);
  const sub = instruction.sub;
  const double = (sub & SseForm.double) !== 0;
  const operation = sub & 7;
  const from = readXmmSource(cpu, instruction, 16);
  const to = instruction.register0 * 4;
  const step = double ? 2 : 1;
  let flags = 0;
  if (operation === Horizontal.addSubtract) {
    for (let lane = 0; lane < 4; lane += step) {
      const odd = (lane / step) % 2 === 1;
      flags |= element(sse, odd ? SseOperation.add : SseOperation.subtract, double, to + lane, from + lane, lane);
    }
  } else {
    const arithmetic = operation === Horizontal.add ? SseOperation.add : SseOperation.subtract;
    // Result element i takes the pair (2i, 2i+1) of the destination for the low half, of the source for the high half.
    for (let lane = 0; lane < 4; lane += step) {
      const pair = lane < 2 ? (double ? 0 : lane * 2) : double ? 0 : (lane - 2) * 2;
      const base = (double ? lane === 0 : lane < 2) ? to : from;
      flags |= element(sse, arithmetic, double, base + pair, base + pair + step, lane);
    }
  }
  recordSimdExceptions(cpu, flags);
  commitResult(sse.lanes, to, 4);
}

/** MXCSR for the approximations: round to nearest, FTZ (tiny results become zero), everything masked. */
const APPROXIMATION_MXCSR = 0x9f80;
const ONE = 0x3f800000;
const INFINITY = 0x7f800000;
const DEFAULT_NAN = 0xffc00000;

/**
 * RCPSS/RCPPS (`sub` bit 0 clear) and RSQRTSS/RSQRTPS (bit 0 set). Intel
 * documents only a relative error of at most 1.5 * 2^-12 and leaves the
 * table-driven bits to the implementation (Intel and AMD differ): tsvirt
 * returns the correctly rounded value, which is within that bound. As the
 * SDM specifies: MXCSR is ignored and no exception is raised, denormal
 * sources count as zero (giving an infinity), tiny results are flushed to
 * zero, RSQRT of a negative number is the default NaN and NaNs are quieted.
 */
export function sseApproximate(cpu: Cpu, instruction: Instruction): void {
  const sse = enterSse(cpu);
  const packed = (instruction.sub & SseForm.packed) !== 0;
  const squareRoot = (instruction.sub & 1) !== 0;
  const from = readXmmSource(cpu, instruction, packed ? 16 : 4);
  const to = instruction.register0 * 4;
  const lanes = sse.lanes;
  const count = packed ? 4 : 1;
  for (let lane = 0; lane < count; lane++) lanes[RESULT_LANES + lane] = approximate(sse, lanes[from + lane]!, squareRoot);
  commitResult(lanes, to, count);
}

function approximate(sse: SseState, value: number, squareRoot: boolean): number {
  const sign = value & 0x80000000;
  const field = (value >>> 23) & 0xff;
  if (field === 0xff) {
    if ((value & 0x7fffff) !== 0) return (value | 0x400000) >>> 0;
    return squareRoot && sign !== 0 ? DEFAULT_NAN : sign >>> 0;
  }
  if (field === 0) return (sign | INFINITY) >>> 0;
  if (squareRoot && sign !== 0) return DEFAULT_NAN;
  let divisor = value;
  if (squareRoot) {
    softArithmetic(SseOperation.squareRoot, FLOAT32, 0, 0, 0, value, APPROXIMATION_MXCSR, sse.result, sse.scratch);
    divisor = sse.result.low;
  }
  softArithmetic(SseOperation.divide, FLOAT32, 0, ONE, 0, divisor, APPROXIMATION_MXCSR, sse.result, sse.scratch);
  return sse.result.low;
}
