import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { createFlatMachine } from './testing/flat-machine.js';

const CODE = 0x100000;

describe('hostile guests', () => {
  test.prop(
    [
      fc.constantFrom(16 as const, 32 as const, 64 as const),
      fc.uint8Array({ minLength: 1, maxLength: 512 }),
      fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 16, maxLength: 16 }),
      fc.nat(0x3fffff),
      fc.array(fc.nat(511), { minLength: 8, maxLength: 8 }),
    ],
    { numRuns: 600 },
  )('random code from random states never throws out of run', (bits, code, registers, flags, entries) => {
    const { cpu, load } = createFlatMachine({ bits, memorySize: 4 * 1024 * 1024 });
    const origin = bits === 16 ? 0x7c00 : CODE;
    load(origin, code);
    registers.forEach((value, index) => cpu.setRegister(index, value));
    cpu.rflags = flags;
    // Several entry points into the same bytes; a shutdown (triple fault) is cleared and execution goes on.
    for (const entry of entries) {
      cpu.setRunState(false, false);
      cpu.setRip(origin + (entry % code.length));
      const result = cpu.run(500);
      expect(result.reason, String(result.error)).not.toBe('internal-error');
    }
  });
});
