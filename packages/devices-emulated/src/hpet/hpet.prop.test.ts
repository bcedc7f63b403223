import { test, fc } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { ManualClock, RecordingIrqLine } from '@tsvirt/interfaces/testing';
import { Hpet } from './hpet.js';

type Op =
  | { kind: 'comparator'; timer: number; offset: number }
  | { kind: 'enable'; on: boolean }
  | { kind: 'advance'; ns: number }
  | { kind: 'counter'; value: number }
  | { kind: 'read' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('comparator' as const), timer: fc.nat(2), offset: fc.integer({ min: -300, max: 3000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('enable' as const), on: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ns: fc.nat(20_000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('counter' as const), value: fc.nat(5000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('read' as const) }) },
);

function setup() {
  const clock = new ManualClock();
  const routes = [new RecordingIrqLine(), new RecordingIrqLine(), new RecordingIrqLine()];
  const hpet = new Hpet({ clock, routes });
  for (let timer = 0; timer < 3; timer++) {
    hpet.write(0x100 + 0x20 * timer, 4, 0x4 | (timer << 9)); // edge, one-shot, 64-bit, route = timer
    hpet.write(0x10c + 0x20 * timer, 4, 0);
  }
  return { clock, routes, hpet };
}

function apply(rig: ReturnType<typeof setup>, o: Op, counterNow: () => number): void {
  if (o.kind === 'comparator') rig.hpet.write(0x108 + 0x20 * o.timer, 4, Math.max(0, counterNow() + o.offset));
  else if (o.kind === 'enable') rig.hpet.write(0x10, 4, o.on ? 1 : 0);
  else if (o.kind === 'advance') rig.clock.advance(o.ns);
  else if (o.kind === 'counter') rig.hpet.write(0xf0, 4, o.value);
}

describe('HPET model', () => {
  test.prop([fc.array(op, { maxLength: 50 })], { numRuns: 200 })('counter and one-shot comparators behave as QEMU documents', (ops) => {
    const rig = setup();
    // Model: the counter runs at one tick per 10 ns while enabled; a comparator armed at or behind the
    // counter fires at the next clock step, ahead of it when the counter gets there; halting disarms, enabling re-arms.
    let enabled = false;
    let frozen = 0;
    let enabledAt = 0;
    const counter = () => (enabled ? frozen + Math.floor((rig.clock.now() - enabledAt) / 10) : frozen);
    const comparators = [2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1];
    const armed = [false, false, false];
    const pulses = [0, 0, 0];
    // Clock callbacks run between accesses: a comparator already passed fires at the next clock step.
    const arm = (timer: number) => {
      if (enabled) armed[timer] = true;
    };
    for (const o of ops) {
      apply(rig, o, counter);
      if (o.kind === 'comparator') {
        comparators[o.timer] = Math.max(0, counter() + o.offset);
        arm(o.timer);
      } else if (o.kind === 'enable') {
        if (o.on && !enabled) {
          enabled = true;
          enabledAt = rig.clock.now();
          [0, 1, 2].forEach(arm);
        } else if (!o.on && enabled) {
          frozen = counter();
          enabled = false;
          armed.fill(false);
        }
      } else if (o.kind === 'advance') {
        for (let timer = 0; timer < 3; timer++) {
          if (armed[timer] && comparators[timer]! <= counter()) {
            pulses[timer]!++;
            armed[timer] = false;
          }
        }
      } else if (o.kind === 'counter') {
        if (!enabled) frozen = o.value;
      } else {
        expect(rig.hpet.read(0xf0, 4)).toBe(counter());
      }
      expect(rig.routes.map((line) => line.pulses)).toEqual(pulses);
    }
  });

  test.prop([fc.array(op, { maxLength: 40 }), fc.array(op, { maxLength: 40 })], { numRuns: 100 })('save, restore into a fresh HPET, continue equals continue', (before, after) => {
    const a = setup();
    const counterOf = (rig: ReturnType<typeof setup>) => () => rig.hpet.read(0xf0, 4);
    for (const o of before) apply(a, o, counterOf(a));
    const b = setup();
    b.clock.advanceTo(a.clock.now());
    b.hpet.restore(JSON.parse(JSON.stringify(a.hpet.save())));
    const base = a.routes.map((line) => line.pulses);
    for (const o of after) {
      apply(a, o, counterOf(a));
      apply(b, o, counterOf(b));
      expect(b.hpet.read(0xf0, 4)).toBe(a.hpet.read(0xf0, 4));
    }
    expect(b.routes.map((line) => line.pulses)).toEqual(a.routes.map((line, i) => line.pulses - base[i]!));
    expect(b.hpet.save()).toEqual(a.hpet.save());
  });
});

describe('HPET hostile access', () => {
  test.prop([fc.array(fc.record({ offset: fc.oneof(fc.nat(0x3ff), fc.constantFrom(0x10, 0x20, 0xf0, 0x100, 0x108, 0x120, 0x128, 0x140, 0x148)), size: fc.constantFrom<1 | 2 | 4>(1, 2, 4, 4), value: fc.nat({ max: 0xffff_ffff }), write: fc.boolean(), ns: fc.nat(50_000) }), { maxLength: 150 })], { numRuns: 100 })(
    'never throws and never floods the clock',
    (accesses) => {
      const rig = setup();
      for (const a of accesses) {
        if (a.write) rig.hpet.write(a.offset, a.size, a.value);
        else rig.hpet.read(a.offset, a.size);
        rig.clock.advance(a.ns);
      }
      const state = rig.hpet.save();
      setup().hpet.restore(JSON.parse(JSON.stringify(state)));
    },
  );
});
