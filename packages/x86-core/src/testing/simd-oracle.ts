import fc from 'fast-check';
import type { InterpreterOutcome } from './interpreter-case.js';
import { ARITHMETIC_FLAGS, ORACLE_MEMORY_BASE, ORACLE_XMM_SIZE, type OracleCase, type OracleResult, Reg } from './oracle/index.js';

/*
 * Helpers for SSE/MMX oracle tests: cases that load XMM0–XMM15 and MXCSR,
 * point RBX at the memory page, and a comparison of everything an SSE
 * instruction can change.
 */

export interface SimdCaseInput {
  readonly code: Uint8Array;
  /** XMM0–XMM15 image (256 bytes). */
  readonly xmm: Uint8Array;
  readonly mxcsr?: number;
  /** The memory page's first bytes (operands at 16-byte aligned offsets from RBX = ORACLE_MEMORY_BASE). */
  readonly memory?: Uint8Array;
  readonly rflags?: number;
  readonly bits?: 64 | 32;
  /** Other general-purpose registers (RBX is set to ORACLE_MEMORY_BASE unless given here). */
  readonly registers?: Partial<Record<number, bigint>>;
}

/** An SSE oracle case with RBX = ORACLE_MEMORY_BASE. */
export function simdCase(input: SimdCaseInput): OracleCase {
  const bits = input.bits ?? 64;
  const registers = new Array<bigint>(bits === 64 ? 16 : 8).fill(0n);
  registers[Reg.rbx] = BigInt(ORACLE_MEMORY_BASE);
  for (const [index, value] of Object.entries(input.registers ?? {})) registers[Number(index)] = value!;
  return { bits, code: input.code, registers, xmm: input.xmm, mxcsr: input.mxcsr ?? 0x1f80, memory: input.memory ?? new Uint8Array(0x200), rflags: input.rflags ?? 0 };
}

function hex(bytes: Uint8Array, from = 0, to = bytes.length): string {
  return [...bytes.subarray(from, to)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** The XMM registers as `xmmN=…` (bytes in memory order) for messages. */
export function xmmText(xmm: Uint8Array, registers: readonly number[]): string {
  return registers.map((register) => `xmm${register}=${hex(xmm, register * 16, register * 16 + 16)}`).join(' ');
}

/**
 * Compares the host's result with the interpreter's: the exception vector,
 * XMM0–XMM15, MXCSR, the memory, the general registers and the arithmetic
 * flags (minus `undefinedFlags`). Returns a description of the first
 * difference, or undefined when they agree.
 */
export function simdDifference(host: OracleResult, mine: InterpreterOutcome, undefinedFlags = 0): string | undefined {
  const hostVector = host.fault?.vector;
  if (hostVector !== mine.vector) return `exception: host ${host.fault?.name ?? 'none'}, interpreter ${mine.vector ?? 'none'}`;
  if (host.xmm !== undefined && mine.xmm !== undefined) {
    for (let register = 0; register < ORACLE_XMM_SIZE / 16; register++) {
      const a = hex(host.xmm, register * 16, register * 16 + 16);
      const b = hex(mine.xmm, register * 16, register * 16 + 16);
      if (a !== b) return `xmm${register}: host ${a}, interpreter ${b}`;
    }
  }
  if (host.mxcsr !== mine.mxcsr) return `mxcsr: host ${host.mxcsr?.toString(16)}, interpreter ${mine.mxcsr?.toString(16)}`;
  if (hex(host.memory) !== hex(mine.memory)) {
    const at = host.memory.findIndex((byte, index) => byte !== mine.memory[index]);
    return `memory at +0x${at.toString(16)}: host ${hex(host.memory, at & ~15, (at & ~15) + 16)}, interpreter ${hex(mine.memory, at & ~15, (at & ~15) + 16)}`;
  }
  for (let index = 0; index < host.registers.length; index++) {
    if (host.registers[index] !== mine.registers[index]) return `register ${index}: host ${host.registers[index]!.toString(16)}, interpreter ${mine.registers[index]!.toString(16)}`;
  }
  const mask = ARITHMETIC_FLAGS & ~undefinedFlags;
  if (hostVector === undefined && (host.rflags & mask) !== (mine.rflags & mask)) {
    return `rflags: host ${(host.rflags & mask).toString(16)}, interpreter ${(mine.rflags & mask).toString(16)}`;
  }
  return undefined;
}

const word = fc.integer({ min: 0, max: 0xffffffff });
const fractionWord = fc.oneof(word, fc.constantFrom(0, 1, 0xffffffff, 0x80000000, 0x10000000, 0x400000), fc.tuple(word, fc.integer({ min: 0, max: 31 })).map(([value, shift]) => ((value >>> shift) << shift) >>> 0));

/** float32 bit patterns weighted to special values: zeros, denormals, infinities, both NaN kinds, near 1.0, extremes. */
export const float32Bits: fc.Arbitrary<number> = fc
  .tuple(fc.constantFrom(0, 1), fc.oneof(fc.integer({ min: 0x70, max: 0x8f }), fc.integer({ min: 0, max: 0xff }), fc.constantFrom(0, 1, 0xfe, 0xff), fc.integer({ min: 0, max: 24 }), fc.integer({ min: 0x9d, max: 0xbf })), fractionWord)
  .map(([sign, field, fraction]) => ((sign << 31) | (field << 23) | (fraction & 0x7fffff)) >>> 0);

/** float64 bit patterns as [low, high] words, weighted like float32Bits. */
export const float64Bits: fc.Arbitrary<[number, number]> = fc
  .tuple(fc.constantFrom(0, 1), fc.oneof(fc.integer({ min: 0x3f0, max: 0x40f }), fc.integer({ min: 0, max: 0x7ff }), fc.constantFrom(0, 1, 0x7fe, 0x7ff), fc.integer({ min: 0, max: 53 }), fc.integer({ min: 0x41d, max: 0x43f })), fractionWord, fractionWord)
  .map(([sign, field, fractionHigh, low]) => [low, ((sign << 31) | (field << 20) | (fractionHigh & 0xfffff)) >>> 0]);

/** Small integers, powers of two near the int32/int64 limits and random words, as 32-bit lanes. */
export const integerBits: fc.Arbitrary<number> = fc.oneof(word, fc.integer({ min: -300, max: 300 }).map((value) => value >>> 0), fc.constantFrom(0x80000000, 0x7fffffff, 0xffffffff, 0x4f000000, 0xcf000000));

/** 16 bytes (four lanes) of float32, float64 or integer patterns, or a mix. */
export const xmmValue: fc.Arbitrary<number[]> = fc.oneof(
  fc.array(float32Bits, { minLength: 4, maxLength: 4 }),
  fc.tuple(float64Bits, float64Bits).map(([a, b]) => [...a, ...b]),
  fc.array(integerBits, { minLength: 4, maxLength: 4 }),
  fc.array(fc.oneof(float32Bits, integerBits), { minLength: 4, maxLength: 4 }),
);

/** An XMM image: `count` registers from xmmValue, the rest zero. */
export function xmmImage(count = 4): fc.Arbitrary<Uint8Array> {
  return fc.array(xmmValue, { minLength: count, maxLength: count }).map((values) => {
    const image = new Uint8Array(ORACLE_XMM_SIZE);
    const view = new DataView(image.buffer);
    values.forEach((lanes, register) => lanes.forEach((lane, index) => view.setUint32(register * 16 + index * 4, lane, true)));
    return image;
  });
}

/** Every rounding mode, DAZ and FTZ; usually all exceptions masked, sometimes one or more unmasked (the host then traps with #XM). */
export const mxcsrValue: fc.Arbitrary<number> = fc
  .tuple(fc.integer({ min: 0, max: 3 }), fc.boolean(), fc.boolean(), fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.constantFrom(1, 2, 4, 8, 0x10, 0x20) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x3f }) }), fc.integer({ min: 0, max: 0x3f }))
  .map(([rounding, daz, ftz, unmasked, sticky]) => ((0x1f80 & ~(unmasked << 7)) | (rounding << 13) | (daz ? 0x40 : 0) | (ftz ? 0x8000 : 0) | (sticky & ((0x1f80 & ~(unmasked << 7)) >> 7))) >>> 0);

/** A memory image of `size` bytes whose 16-byte slots hold xmmValue patterns. */
export function simdMemory(size = 0x200): fc.Arbitrary<Uint8Array> {
  return fc.array(xmmValue, { minLength: size / 16, maxLength: size / 16 }).map((values) => {
    const image = new Uint8Array(size);
    const view = new DataView(image.buffer);
    values.forEach((lanes, slot) => lanes.forEach((lane, index) => view.setUint32(slot * 16 + index * 4, lane, true)));
    return image;
  });
}
