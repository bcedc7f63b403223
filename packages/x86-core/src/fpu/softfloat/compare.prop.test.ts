import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { extendedCompare, extendedExamine } from './compare.js';
import { createHostOracle, extendedBytes, OracleOperation, requireOracleOutsideCi } from './host-oracle.js';
import { anyExtended, type ExtendedPattern, x87Control } from './testing-arbitraries.js';

/* FCOM, FUCOM and FXAM condition codes and exceptions against the host FPU (a compare sets its condition codes even with IE or DE unmasked). */

const oracle = createHostOracle();
requireOracleOutsideCi(oracle);
const skip = 'unavailable' in oracle;
const STATUS_MASK = 0x3f | 0x4700;
const hex = (value: ExtendedPattern): string => `${value.signExponent.toString(16)}:${(value.high >>> 0).toString(16)}:${(value.low >>> 0).toString(16)}`;

/** Pairs often equal or differing only in sign or the lowest bit. */
const pair = fc.oneof(
  fc.tuple(anyExtended, anyExtended),
  fc.tuple(anyExtended, fc.constantFrom(0, 0x8000), fc.constantFrom(0, 1)).map(([a, sign, delta]) => [a, { ...a, signExponent: a.signExponent ^ sign, low: (a.low + delta) >>> 0 }] as [ExtendedPattern, ExtendedPattern]),
);

describe.skipIf(skip)('x87 compare and examine against the host FPU', () => {
  for (const [name, operation, quiet] of [['FCOM', OracleOperation.fcom, false], ['FUCOM', OracleOperation.fucom, true]] as const) {
    test.prop([fc.array(fc.tuple(pair, x87Control), { minLength: 3000, maxLength: 3000 })], { numRuns: 2, endOnFailure: true })(name, (cases) => {
      if ('unavailable' in oracle) return;
      const host = oracle.run(cases.map(([[a, b], control]) => ({ operation, control, a: extendedBytes(a.signExponent, a.high, a.low), b: extendedBytes(b.signExponent, b.high, b.low) })));
      cases.forEach(([[a, b], control], index) => {
        expect((extendedCompare(a, b, quiet) & STATUS_MASK).toString(16), `${name} ${hex(a)} ${hex(b)} control ${control.toString(16)}`).toBe((host[index]!.status & STATUS_MASK).toString(16));
      });
    });
  }
  test.prop([fc.array(anyExtended, { minLength: 3000, maxLength: 3000 })], { numRuns: 2, endOnFailure: true })('FXAM', (cases) => {
    if ('unavailable' in oracle) return;
    const host = oracle.run(cases.map((a) => ({ operation: OracleOperation.fxam, control: 0x37f, a: extendedBytes(a.signExponent, a.high, a.low), b: new Uint8Array(16) })));
    cases.forEach((a, index) => {
      expect((extendedExamine(a) & STATUS_MASK).toString(16), `FXAM ${hex(a)}`).toBe((host[index]!.status & STATUS_MASK).toString(16));
    });
  });
});
