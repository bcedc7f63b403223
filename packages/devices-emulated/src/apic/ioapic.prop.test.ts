import { test, fc } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { StateError } from '@tsvirt/interfaces';
import { IoApic } from './ioapic.js';
import { RecordingApicBus } from '../testing/platform.js';

type Op =
  | { kind: 'low'; pin: number; value: number }
  | { kind: 'high'; pin: number; value: number }
  | { kind: 'level'; pin: number; asserted: boolean }
  | { kind: 'pulse'; pin: number }
  | { kind: 'eoi'; vector: number; viaRegister: boolean };

const pin = fc.nat(5);
const vector = fc.constantFrom(0x30, 0x31, 0x32);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('low' as const), pin, value: fc.tuple(vector, fc.nat(0xffff_ffff)).map(([v, bits]) => ((bits & 0xffff_ff00) | v) >>> 0) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('high' as const), pin, value: fc.nat({ max: 0xffff_ffff }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('level' as const), pin, asserted: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pulse' as const), pin }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('eoi' as const), vector, viaRegister: fc.boolean() }) },
);

/** The 82093AA datasheet's redirection behaviour, written out directly. */
class IoApicModel {
  low = new Array<number>(24).fill(0x1_0000);
  high = new Array<number>(24).fill(0);
  levels = new Array<boolean>(24).fill(false);
  sent: Array<{ vector: number; destination: number; logical: boolean; mode: number; level: boolean }> = [];
  private isLevel(pin: number) {
    return (this.low[pin]! & 0x8000) !== 0;
  }
  private masked(pin: number) {
    return (this.low[pin]! & 0x1_0000) !== 0;
  }
  private send(pin: number) {
    const low = this.low[pin]!;
    this.sent.push({ vector: low & 0xff, destination: this.high[pin]! >>> 24, logical: (low & 0x800) !== 0, mode: (low >> 8) & 7, level: (low & 0x8000) !== 0 });
  }
  private service(pin: number) {
    if (this.isLevel(pin) && !this.masked(pin) && (this.low[pin]! & 0x4000) === 0 && this.levels[pin]) {
      this.low[pin] = this.low[pin]! | 0x4000;
      this.send(pin);
    }
  }
  writeLow(pin: number, value: number) {
    const remote = (value & 0x8000) !== 0 ? this.low[pin]! & 0x4000 : 0;
    this.low[pin] = (value & 0x1_afff) | remote;
    this.service(pin);
  }
  setLevel(pin: number, asserted: boolean) {
    const rising = asserted && !this.levels[pin];
    this.levels[pin] = asserted;
    if (this.isLevel(pin)) this.service(pin);
    else if (rising && !this.masked(pin)) this.send(pin);
  }
  eoi(vector: number) {
    for (let p = 0; p < 24; p++) {
      if ((this.low[p]! & 0xff) === vector && (this.low[p]! & 0x4000) !== 0) {
        this.low[p] = this.low[p]! & ~0x4000;
        this.service(p);
      }
    }
  }
}

function apply(ioapic: IoApic, bus: RecordingApicBus, o: Op): void {
  if (o.kind === 'low' || o.kind === 'high') {
    ioapic.mmio.write(0x00, 1, 0x10 + 2 * o.pin + (o.kind === 'high' ? 1 : 0));
    ioapic.mmio.write(0x10, 4, o.value);
  } else if (o.kind === 'level') ioapic.inputs[o.pin]!.setLevel(o.asserted);
  else if (o.kind === 'pulse') ioapic.inputs[o.pin]!.pulse();
  else if (o.viaRegister) ioapic.mmio.write(0x40, 4, o.vector);
  else bus.broadcastEoi(o.vector);
}

describe('IOAPIC model', () => {
  test.prop([fc.array(op, { maxLength: 60 })], { numRuns: 200 })('redirection entries, remote IRR and deliveries follow the 82093AA', (ops) => {
    const bus = new RecordingApicBus();
    const ioapic = new IoApic({ bus });
    const model = new IoApicModel();
    for (const o of ops) {
      apply(ioapic, bus, o);
      if (o.kind === 'low') model.writeLow(o.pin, o.value);
      else if (o.kind === 'high') model.high[o.pin] = (o.value & 0xff00_0000) >>> 0;
      else if (o.kind === 'level') model.setLevel(o.pin, o.asserted);
      else if (o.kind === 'pulse') {
        model.setLevel(o.pin, true);
        model.setLevel(o.pin, false);
      } else model.eoi(o.vector);
    }
    expect(bus.sent.map((m) => ({ vector: m.vector, destination: m.destination, logical: m.logical, mode: m.deliveryMode, level: m.levelTriggered }))).toEqual(model.sent);
    for (let p = 0; p < 24; p++) {
      ioapic.mmio.write(0x00, 4, 0x10 + 2 * p);
      expect(ioapic.mmio.read(0x10, 4)).toBe(model.low[p]);
      ioapic.mmio.write(0x00, 4, 0x11 + 2 * p);
      expect(ioapic.mmio.read(0x10, 4)).toBe(model.high[p]);
    }
  });

  test.prop([fc.array(op, { maxLength: 40 }), fc.array(op, { maxLength: 40 })], { numRuns: 100 })('save, restore into a fresh IOAPIC, continue equals continue', (before, after) => {
    const busA = new RecordingApicBus();
    const a = new IoApic({ bus: busA });
    for (const o of before) apply(a, busA, o);
    const busB = new RecordingApicBus();
    const b = new IoApic({ bus: busB });
    b.restore(JSON.parse(JSON.stringify(a.save())));
    busA.sent.length = 0;
    for (const o of after) {
      apply(a, busA, o);
      apply(b, busB, o);
    }
    expect(busB.sent).toEqual(busA.sent);
    expect(b.save()).toEqual(a.save());
  });

  test.prop([fc.array(fc.record({ offset: fc.nat(0xff), size: fc.constantFrom<1 | 2 | 4>(1, 2, 4), value: fc.nat({ max: 0xffff_ffff }), write: fc.boolean(), pin: fc.nat(23), level: fc.boolean() }), { maxLength: 150 })], { numRuns: 100 })(
    'never throws on any access',
    (accesses) => {
      const bus = new RecordingApicBus();
      const ioapic = new IoApic({ bus, version: 0x11 });
      for (const a of accesses) {
        if (a.write) ioapic.mmio.write(a.offset, a.size, a.value);
        else ioapic.mmio.read(a.offset, a.size);
        ioapic.inputs[a.pin]!.setLevel(a.level);
      }
    },
  );
});

describe('IOAPIC state validation', () => {
  test.prop([fc.constantFrom('low', 'high', 'levels', 'id', 'version')])('rejects a corrupted %s', (field) => {
    const ioapic = new IoApic({ bus: new RecordingApicBus() });
    const state = { ...ioapic.save() } as Record<string, unknown>;
    state[field] = field === 'low' ? new Array(24).fill(0x4000) : field === 'high' ? new Array(24).fill(1) : field === 'levels' ? [true] : field === 'id' ? 16 : 7;
    expect(() => ioapic.restore(state)).toThrow(StateError);
  });

  test.prop([fc.constant(null)])('version 0x11 has no EOI register and reports 0x170011', () => {
    const bus = new RecordingApicBus();
    const ioapic = new IoApic({ bus, version: 0x11 });
    ioapic.mmio.write(0x00, 1, 1);
    expect(ioapic.mmio.read(0x10, 4)).toBe(0x0017_0011);
    ioapic.mmio.write(0x00, 1, 0x10);
    ioapic.mmio.write(0x10, 4, 0x8030);
    ioapic.inputs[0]!.setLevel(true);
    ioapic.mmio.write(0x40, 4, 0x30);
    expect(ioapic.entry(0).low & 0x4000).toBe(0x4000);
    bus.broadcastEoi(0x30);
    expect(bus.sent.length).toBe(2);
  });
});
