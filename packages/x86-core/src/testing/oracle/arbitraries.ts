import fc from 'fast-check';
import {
  ORACLE_MEMORY_BASE,
  ORACLE_MEMORY_SIZE,
  Reg,
  SETTABLE_FLAGS,
  ARITHMETIC_FLAGS,
  registerCount,
  type OracleBits,
  type OracleCase,
} from './types.js';

/** Values that break arithmetic: zero, one, all ones, sign bits and their neighbours, at every operand width. */
export function edgeValues(bits: OracleBits): readonly bigint[] {
  const values = new Set<bigint>([0n, 1n, 2n]);
  for (const width of [8n, 16n, 32n, 64n]) {
    if (width > BigInt(bits)) break;
    const signBit = 1n << (width - 1n);
    const allOnes = (1n << width) - 1n;
    for (const value of [signBit, signBit - 1n, signBit + 1n, allOnes, allOnes - 1n, allOnes + 1n]) {
      values.add(BigInt.asUintN(bits, value));
    }
  }
  return [...values];
}

/** A register value of the given width (unsigned), biased toward edge values and small numbers. */
export function registerValue(bits: OracleBits): fc.Arbitrary<bigint> {
  const max = (1n << BigInt(bits)) - 1n;
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...edgeValues(bits)) },
    { weight: 2, arbitrary: fc.bigInt({ min: 0n, max: 0xffn }) },
    { weight: 1, arbitrary: fc.bigInt({ min: -0x80n, max: -1n }).map((value) => BigInt.asUintN(bits, value)) },
    // Random values whose low byte/word/dword are edge values reach the partial-register forms.
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.bigInt({ min: 0n, max }), fc.constantFrom(...edgeValues(32)), fc.constantFrom(0xffn, 0xffffn, 0xffff_ffffn))
        .map(([high, low, mask]) => BigInt.asUintN(bits, (high & ~mask) | (low & mask))),
    },
    { weight: 4, arbitrary: fc.bigInt({ min: 0n, max }) },
  );
}

/** A 64-bit register value biased toward edge cases. */
export const registerValue64 = (): fc.Arbitrary<bigint> => registerValue(64);
/** A 32-bit register value biased toward edge cases. */
export const registerValue32 = (): fc.Arbitrary<bigint> => registerValue(32);

/** Initial flags: any combination of the arithmetic flags, with DF too when `direction` is true. */
export function oracleFlags(options: { readonly direction?: boolean } = {}): fc.Arbitrary<number> {
  const mask = options.direction === true ? SETTABLE_FLAGS : ARITHMETIC_FLAGS;
  return fc.nat({ max: 0xfff }).map((value) => value & mask);
}

/** Memory content of the given length (at most 4096), biased toward zeros and all ones. */
export function memoryImage(length: number = ORACLE_MEMORY_SIZE): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.uint8Array({ minLength: length, maxLength: length }) },
    { weight: 1, arbitrary: fc.constantFrom(0, 0xff).map((fill) => new Uint8Array(length).fill(fill)) },
  );
}

/**
 * An address inside the memory page, leaving `margin` bytes on both sides so
 * accesses around it stay inside (default 64), aligned to `alignment` (default 1).
 */
export function pointerIntoMemory(
  options: { readonly margin?: number; readonly alignment?: number } = {},
): fc.Arbitrary<bigint> {
  const margin = options.margin ?? 64;
  const alignment = options.alignment ?? 1;
  const slots = Math.floor((ORACLE_MEMORY_SIZE - 2 * margin) / alignment);
  return fc
    .nat({ max: Math.max(0, slots - 1) })
    .map((slot) => BigInt(ORACLE_MEMORY_BASE + margin + slot * alignment));
}

export interface OracleCaseOptions {
  readonly bits: OracleBits;
  /** The code to run: fixed bytes or an arbitrary of them. */
  readonly code: Uint8Array | fc.Arbitrary<Uint8Array>;
  /**
   * Registers that must hold addresses inside the memory page (by index, see
   * `Reg`), e.g. the base of a memory operand. The stack pointer is always one
   * unless `freeStackPointer` is set.
   */
  readonly pointerRegisters?: readonly number[];
  /** Let RSP/ESP take arbitrary values too (only for code that does not use the stack). */
  readonly freeStackPointer?: boolean;
  /** Arbitrary for every other register; default `registerValue(bits)`. */
  readonly registerValue?: fc.Arbitrary<bigint>;
  /** Length of the memory image (default 4096; 0 for no memory). */
  readonly memoryLength?: number;
  /** Arbitrary for the initial flags; default `oracleFlags()` (arithmetic flags, DF clear). */
  readonly flags?: fc.Arbitrary<number>;
}

/** A whole case: registers biased to edge values, pointers into memory where asked, random flags and memory. */
export function oracleCase(options: OracleCaseOptions): fc.Arbitrary<OracleCase> {
  const { bits } = options;
  const pointers = new Set(options.pointerRegisters ?? []);
  if (options.freeStackPointer !== true) pointers.add(Reg.rsp);
  const value = options.registerValue ?? registerValue(bits);
  const registers = Array.from({ length: registerCount(bits) }, (_, index) =>
    pointers.has(index) ? pointerIntoMemory({ margin: 256, alignment: bits / 8 }) : value,
  );
  const code = options.code instanceof Uint8Array ? fc.constant(options.code) : options.code;
  const memoryLength = options.memoryLength ?? ORACLE_MEMORY_SIZE;
  return fc
    .record({
      code,
      registers: fc.tuple(...registers),
      rflags: options.flags ?? oracleFlags(),
      memory: memoryImage(memoryLength),
    })
    .map(({ code: bytes, registers: values, rflags, memory }) => ({
      bits,
      code: bytes,
      registers: values,
      rflags,
      memory,
    }));
}
