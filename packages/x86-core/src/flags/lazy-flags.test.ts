import { describe, expect, test } from 'vitest';
import { Flag } from '../state/registers.js';
import { FlagOp, LazyFlags } from './lazy-flags.js';

const ARITH = Flag.CF | Flag.PF | Flag.AF | Flag.ZF | Flag.SF | Flag.OF;

function flagsOf(setup: (flags: LazyFlags) => void): number {
  const flags = new LazyFlags();
  setup(flags);
  return flags.get() & ARITH;
}

// Each expectation is worked out by hand from the SDM's flag definitions.
describe('lazy flags', () => {
  test('8-bit add: 0xff + 0x01 = 0x00 carries out of bits 7 and 3', () => {
    expect(flagsOf((f) => f.set(FlagOp.Add, 1, 0x00, 0xff, 0x01))).toBe(Flag.CF | Flag.ZF | Flag.PF | Flag.AF);
  });

  test('16-bit add: 0x7fff + 1 overflows to 0x8000', () => {
    expect(flagsOf((f) => f.set(FlagOp.Add, 2, 0x8000, 0x7fff, 0x0001))).toBe(Flag.OF | Flag.SF | Flag.AF | Flag.PF);
  });

  test('32-bit sub: 3 - 5 borrows; the result 0xfffffffe has seven low-byte ones (odd parity)', () => {
    expect(flagsOf((f) => f.set(FlagOp.Sub, 4, -2, 3, 5))).toBe(Flag.CF | Flag.SF | Flag.AF);
  });

  test('adc with carry-in: 0xff + 0xff + 1 = 0x1ff', () => {
    expect(flagsOf((f) => f.set(FlagOp.Adc, 1, 0xff, 0xff, 0xff))).toBe(Flag.CF | Flag.SF | Flag.AF | Flag.PF);
  });

  test('sbb with borrow-in: 0 - 0 - 1', () => {
    expect(flagsOf((f) => f.set(FlagOp.Sbb, 1, 0xff, 0x00, 0x00))).toBe(Flag.CF | Flag.SF | Flag.AF | Flag.PF);
  });

  test('64-bit add across the halves: 0x7fffffffffffffff + 1', () => {
    expect(flagsOf((f) => f.set64(FlagOp.Add, 0, 0x80000000 | 0, -1, 0x7fffffff, 1, 0))).toBe(Flag.OF | Flag.SF | Flag.AF | Flag.PF);
  });

  test('64-bit sub: 0 - 1 borrows', () => {
    expect(flagsOf((f) => f.set64(FlagOp.Sub, -1, -1, 0, 0, 1, 0))).toBe(Flag.CF | Flag.SF | Flag.AF | Flag.PF);
  });

  test('inc keeps the earlier CF and sets OF at 0x7f → 0x80', () => {
    expect(
      flagsOf((f) => {
        f.set(FlagOp.Add, 1, 0x00, 0xff, 0x01);
        f.setIncDec(FlagOp.Inc, 1, 0x80, 0);
      }),
    ).toBe(Flag.CF | Flag.OF | Flag.SF | Flag.AF);
  });

  test('logic results clear CF, OF and AF', () => {
    expect(flagsOf((f) => f.set(FlagOp.Logic, 4, 0, 0, 0))).toBe(Flag.ZF | Flag.PF);
  });

  test('conditions match the flags they are defined by', () => {
    const flags = new LazyFlags();
    flags.set(FlagOp.Sub, 4, (-1 - 1) | 0, -1, 1); // cmp -1, 1
    expect(flags.condition(0xc)).toBe(true); // L: -1 < 1
    expect(flags.condition(0x2)).toBe(false); // B: 0xffffffff is not below 1
    expect(flags.condition(0x7)).toBe(true); // A
    expect(flags.condition(0x8)).toBe(true); // S
    flags.set(FlagOp.Add, 1, 0x80, 0x7f, 0x01);
    expect(flags.condition(0x0)).toBe(true); // O
  });

  test('signed conditions after an overflowing add use SF xor OF', () => {
    const flags = new LazyFlags();
    flags.set(FlagOp.Add, 1, 0x80, 0x7f, 0x01); // SF = 1, OF = 1
    expect(flags.condition(0xc)).toBe(false); // L: SF != OF is false
    expect(flags.condition(0xf)).toBe(true); // G: ZF = 0 and SF = OF
  });

  test('materialize then set keeps every bit', () => {
    const flags = new LazyFlags();
    flags.setAll(0x202 | Flag.DF);
    flags.set(FlagOp.Sub, 1, 0, 5, 5);
    expect(flags.get()).toBe(0x202 | Flag.DF | Flag.ZF | Flag.PF);
    flags.materialize();
    expect(flags.op).toBe(FlagOp.None);
    expect(flags.bits).toBe(0x202 | Flag.DF | Flag.ZF | Flag.PF);
  });
});
