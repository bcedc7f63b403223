import { fc, test } from '@fast-check/vitest';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { expect } from 'vitest';
import { I6300esb } from './i6300esb.js';
import { Ib700 } from './ib700.js';

/** A guest's access (to BAR 0, configuration space, or the IB700's ports) or time passing. */
const operation = fc.oneof(
  fc.record({ kind: fc.constant('register' as const), offset: fc.nat(15), size: fc.constantFrom(1 as const, 2 as const, 4 as const), value: fc.oneof(fc.constantFrom(0x80, 0x86, 0x100, 0x1000, 0x200), fc.nat(0xffff_ffff)) }),
  fc.record({ kind: fc.constant('config' as const), offset: fc.constantFrom(0x60, 0x68, 0x69, 0x40), size: fc.constantFrom(1 as const, 2 as const, 4 as const), value: fc.nat(0xffff) }),
  fc.record({ kind: fc.constant('wait' as const), nanoseconds: fc.oneof(fc.nat(1_000_000), fc.nat(40_000_000_000)) }),
);
type Operation = typeof operation extends fc.Arbitrary<infer T> ? T : never;

function apply(watchdog: I6300esb, ib700: Ib700, clock: ManualClock, step: Operation): number | undefined {
  if (step.kind === 'wait') {
    clock.advance(step.nanoseconds);
    return undefined;
  }
  const value = step.size === 4 ? step.value >>> 0 : step.value & ((1 << (8 * step.size)) - 1);
  if (step.kind === 'config') {
    watchdog.writeConfig(step.offset, step.size, value);
    return watchdog.readConfig(step.offset, step.size);
  }
  watchdog.bars[0]!.device.write(step.offset, step.size, value);
  ib700.write(step.offset & 3, 1, value & 0xff);
  return watchdog.bars[0]!.device.read(step.offset, step.size);
}

function machine(start: number) {
  const clock = new ManualClock(start);
  const expiries: number[] = [];
  const watchdog = new I6300esb({ clock, onExpire: () => expiries.push(clock.now()) });
  const ib700 = new Ib700({ clock, onExpire: () => expiries.push(-clock.now()) });
  return { clock, expiries, watchdog, ib700 };
}

test.prop([fc.array(operation, { maxLength: 40 }), fc.array(operation, { maxLength: 40 })], { numRuns: 200 })(
  'any access sequence stays in range, and save → restore → continue equals continue',
  (before, after) => {
    const a = machine(0);
    for (const step of before) apply(a.watchdog, a.ib700, a.clock, step);
    const b = machine(a.clock.now());
    b.watchdog.restore(JSON.parse(JSON.stringify(a.watchdog.save())));
    b.ib700.restore(JSON.parse(JSON.stringify(a.ib700.save())));
    const seen = a.expiries.length;
    for (const step of after) {
      const read = apply(a.watchdog, a.ib700, a.clock, step);
      expect(apply(b.watchdog, b.ib700, b.clock, step)).toBe(read);
      if (read !== undefined) expect(read).toBeGreaterThanOrEqual(0);
    }
    expect(b.expiries).toEqual(a.expiries.slice(seen));
    expect(b.watchdog.save()).toEqual(a.watchdog.save());
    expect(b.ib700.save()).toEqual(a.ib700.save());
  },
);
