import { test, fc } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { createApicFixture as makeApics } from '../testing/platform.js';

type PriorityOp =
  | { kind: 'accept'; vector: number; level: boolean }
  | { kind: 'tpr'; value: number }
  | { kind: 'ack' }
  | { kind: 'eoi' }
  | { kind: 'read'; word: number };

const priorityOp: fc.Arbitrary<PriorityOp> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('accept' as const), vector: fc.nat(255), level: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tpr' as const), value: fc.nat(255) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('ack' as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('eoi' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('read' as const), word: fc.nat(7) }) },
);

/** SDM 11.8: IRR/ISR/TMR, PPR from TPR and the highest in-service class, acknowledge and EOI. */
class PriorityModel {
  irr = new Set<number>();
  isr = new Set<number>();
  tmr = new Set<number>();
  tpr = 0;
  esr = 0;
  broadcasts: number[] = [];
  get ppr(): number {
    const isrv = Math.max(0, ...this.isr);
    return this.tpr >> 4 >= isrv >> 4 ? this.tpr : isrv & 0xf0;
  }
  accept(vector: number, level: boolean): void {
    if (vector < 16) {
      this.esr |= 0x40;
      return;
    }
    this.irr.add(vector);
    if (level) this.tmr.add(vector);
    else this.tmr.delete(vector);
  }
  ack(): number {
    const vector = Math.max(-1, ...this.irr);
    if (vector < 0 || vector >> 4 <= this.ppr >> 4) return 0xff;
    this.irr.delete(vector);
    this.isr.add(vector);
    return vector;
  }
  eoi(): void {
    const vector = Math.max(-1, ...this.isr);
    if (vector < 0) return;
    this.isr.delete(vector);
    if (this.tmr.has(vector)) this.broadcasts.push(vector);
  }
  word(set: Set<number>, index: number): number {
    let bits = 0;
    for (const vector of set) if (vector >> 5 === index) bits |= 1 << (vector & 31);
    return bits >>> 0;
  }
}

describe('local APIC priority model', () => {
  test.prop([fc.array(priorityOp, { maxLength: 80 })], { numRuns: 150 })('acceptance, PPR, acknowledge and EOI follow the SDM', (ops) => {
    const { apics, reg, bus } = makeApics();
    const apic = apics[0]!;
    const r = reg(apic);
    r.write(0xf0, 0x1ff);
    const broadcasts: number[] = [];
    bus.onEoi((vector) => broadcasts.push(vector));
    const model = new PriorityModel();
    for (const o of ops) {
      if (o.kind === 'accept') {
        apic.accept(0, o.vector, o.level);
        model.accept(o.vector, o.level);
      } else if (o.kind === 'tpr') {
        r.write(0x80, o.value);
        model.tpr = o.value;
      } else if (o.kind === 'ack') {
        expect(apic.acknowledge()).toBe(model.ack());
      } else if (o.kind === 'eoi') {
        r.write(0xb0, 0);
        model.eoi();
      } else {
        expect(r.read(0x100 + 0x10 * o.word)).toBe(model.word(model.isr, o.word));
        expect(r.read(0x180 + 0x10 * o.word)).toBe(model.word(model.tmr, o.word));
        expect(r.read(0x200 + 0x10 * o.word)).toBe(model.word(model.irr, o.word));
      }
      expect(r.read(0xa0)).toBe(model.ppr);
      expect(apic.pending()).toBe(Math.max(-1, ...model.irr) >> 4 > model.ppr >> 4 && model.irr.size > 0);
    }
    expect(broadcasts).toEqual(model.broadcasts);
    r.write(0x280, 0);
    expect(r.read(0x280)).toBe(model.esr);
  });
});

describe('local APIC register masks', () => {
  const offsets = [0x20, 0x80, 0xd0, 0xe0, 0xf0, 0x310, 0x320, 0x330, 0x340, 0x350, 0x360, 0x370, 0x2f0, 0x3e0];
  /** Writable bits per the SDM (figures 11-8 .. 11-14 and 11-23); LVT delivery status and remote IRR read 0 here. */
  const masks: Record<number, number> = {
    0x20: 0xff00_0000,
    0x80: 0xff,
    0xd0: 0xff00_0000,
    0xf0: 0x3ff,
    0x310: 0xff00_0000,
    0x320: 0x7_00ff,
    0x330: 0x1_07ff,
    0x340: 0x1_07ff,
    0x350: 0x1_a7ff,
    0x360: 0x1_a7ff,
    0x370: 0x1_00ff,
    0x2f0: 0x1_07ff,
    0x3e0: 0xb,
  };
  const lvts = [0x2f0, 0x320, 0x330, 0x340, 0x350, 0x360, 0x370];
  test.prop([fc.array(fc.tuple(fc.constantFrom(...offsets), fc.nat({ max: 0xffff_ffff })), { maxLength: 60 })], { numRuns: 150 })('reads back what the SDM says is writable', (writes) => {
    const { apics, reg } = makeApics(1);
    const r = reg(apics[0]!);
    const model = new Map<number, number>([
      [0x20, 0],
      [0x80, 0],
      [0xd0, 0],
      [0xe0, 0xffff_ffff],
      [0xf0, 0xff],
      [0x310, 0],
      [0x3e0, 0],
      ...lvts.map((offset) => [offset, 0x1_0000] as [number, number]),
    ]);
    model.set(0x350, 0x700);
    for (const [offset, value] of writes) {
      r.write(offset, value);
      if (offset === 0xe0) {
        model.set(0xe0, ((value & 0xf000_0000) | 0x0fff_ffff) >>> 0);
        continue;
      }
      const enabledBefore = (model.get(0xf0)! & 0x100) !== 0;
      let next = (value & masks[offset]!) >>> 0;
      if (lvts.includes(offset) && !enabledBefore) next = (next | 0x1_0000) >>> 0;
      model.set(offset, next);
      if (offset === 0xf0 && enabledBefore && (next & 0x100) === 0) for (const lvt of lvts) model.set(lvt, (model.get(lvt)! | 0x1_0000) >>> 0);
    }
    for (const [offset, expected] of model) expect([offset, r.read(offset)]).toEqual([offset, expected]);
  });
});

type TimerOp =
  | { kind: 'program'; divideCode: number; periodic: boolean; initial: number }
  | { kind: 'advance'; ns: number }
  | { kind: 'read' }
  | { kind: 'ack' };

const timerOp: fc.Arbitrary<TimerOp> = fc.oneof(
  fc.record({ kind: fc.constant('program' as const), divideCode: fc.nat(7), periodic: fc.boolean(), initial: fc.nat(300) }),
  fc.record({ kind: fc.constant('advance' as const), ns: fc.nat(3000) }),
  fc.record({ kind: fc.constant('read' as const) }),
  fc.record({ kind: fc.constant('ack' as const) }),
);

describe('local APIC timer model', () => {
  test.prop([fc.array(timerOp, { maxLength: 40 })], { numRuns: 150 })('current count and interrupts follow the divide and mode (SDM 11.5.4)', (ops) => {
    const { apics, reg, clock } = makeApics();
    const apic = apics[0]!;
    const r = reg(apic);
    r.write(0xf0, 0x1ff);
    // Model: count = initial - elapsed/divisor (one-shot stops at 0, periodic reloads); an expiry sets IRR.
    let program: { start: number; divisor: number; periodic: boolean; initial: number } | undefined;
    let delivered = 0;
    let pending = false;
    const expirations = (now: number) => {
      if (program === undefined || program.initial === 0) return 0;
      const periods = Math.floor((now - program.start) / (program.initial * program.divisor));
      return program.periodic ? periods : Math.min(1, periods);
    };
    for (const o of ops) {
      if (o.kind === 'program') {
        const code = o.divideCode;
        r.write(0x3e0, (code & 3) | ((code & 4) << 1));
        r.write(0x320, (o.periodic ? 0x2_0000 : 0) | 0x80);
        r.write(0x380, o.initial);
        program = { start: clock.now(), divisor: code === 7 ? 1 : 2 << code, periodic: o.periodic, initial: o.initial };
        delivered = 0;
      } else if (o.kind === 'advance') {
        clock.advance(o.ns);
        const total = expirations(clock.now());
        if (total > delivered) pending = true;
        delivered = total;
      } else if (o.kind === 'read') {
        let expected = 0;
        if (program !== undefined && program.initial !== 0) {
          const elapsed = Math.floor((clock.now() - program.start) / program.divisor);
          expected = program.periodic ? program.initial - (elapsed % program.initial) : Math.max(0, program.initial - elapsed);
        }
        expect(r.read(0x390)).toBe(expected);
      } else {
        expect(apic.acknowledge()).toBe(pending ? 0x80 : 0xff);
        if (pending) r.write(0xb0, 0);
        pending = false;
      }
    }
  });
});

type AnyOp =
  | { kind: 'mmio'; offset: number; size: 1 | 2 | 4; value: number; write: boolean }
  | { kind: 'msr'; index: number; low: number; high: number; write: boolean }
  | { kind: 'accept'; mode: number; vector: number; level: boolean }
  | { kind: 'msi'; address: number; data: number }
  | { kind: 'advance'; ns: number }
  | { kind: 'ack' }
  | { kind: 'lint'; pin: 0 | 1; level: boolean };

const registerOffset = fc.oneof(fc.constantFrom(0x20, 0x80, 0xb0, 0xd0, 0xe0, 0xf0, 0x280, 0x300, 0x310, 0x320, 0x350, 0x370, 0x380, 0x390, 0x3e0), fc.nat(0xfff));
const anyOp: fc.Arbitrary<AnyOp> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('mmio' as const), offset: registerOffset, size: fc.constantFrom<1 | 2 | 4>(1, 2, 4, 4, 4), value: fc.nat({ max: 0xffff_ffff }), write: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('msr' as const), index: fc.oneof(fc.constantFrom(0x1b, 0x6e0, 0x802, 0x808, 0x80b, 0x830, 0x832, 0x838, 0x83e, 0x83f), fc.integer({ min: 0x800, max: 0x8ff })), low: fc.oneof(fc.constantFrom(0xfee0_0800, 0xfee0_0c00, 0xfee0_0000, 0), fc.nat({ max: 0xffff_ffff })), high: fc.oneof(fc.constant(0), fc.nat({ max: 0xffff_ffff })), write: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('accept' as const), mode: fc.nat(7), vector: fc.nat(255), level: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('msi' as const), address: fc.oneof(fc.integer({ min: 0xfee0_0000, max: 0xfeef_ffff }), fc.nat({ max: 2 ** 40 })), data: fc.nat(0xffff) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ns: fc.nat(100_000) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('ack' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lint' as const), pin: fc.constantFrom<0 | 1>(0, 1), level: fc.boolean() }) },
);

function runOps(rig: ReturnType<typeof makeApics>, ops: AnyOp[]): number[] {
  const acks: number[] = [];
  const msr = new Uint32Array(2);
  for (const o of ops) {
    const apic = rig.apics[0]!;
    if (o.kind === 'mmio') {
      if (o.write) apic.mmio.write(o.offset, o.size, o.value);
      else acks.push(apic.mmio.read(o.offset, o.size));
    } else if (o.kind === 'msr') {
      if (o.write) apic.writeMsr(o.index, o.low, o.high);
      else if (apic.readMsr(o.index, msr)) acks.push(msr[0]!, msr[1]!);
    } else if (o.kind === 'accept') apic.accept(o.mode, o.vector, o.level);
    else if (o.kind === 'msi') rig.bus.deliver(o.address, o.data);
    else if (o.kind === 'advance') rig.clock.advance(o.ns);
    else if (o.kind === 'ack') acks.push(apic.pending() ? 1 : 0, apic.acknowledge());
    else if (o.pin === 0) apic.setLint0(o.level);
    else apic.setLint1(o.level);
  }
  return acks;
}

describe('local APIC state and hostile input', () => {
  test.prop([fc.array(anyOp, { maxLength: 80 }), fc.array(anyOp, { maxLength: 80 })], { numRuns: 100 })('save, restore into a fresh APIC, continue equals continue', (before, after) => {
    const original = makeApics(2);
    runOps(original, before);
    const copy = makeApics(2, new ManualClock(original.clock.now()));
    copy.pic.queue.push(...original.pic.queue);
    copy.apics.forEach((apic, index) => apic.restore(JSON.parse(JSON.stringify(original.apics[index]!.save()))));
    copy.ioapic.restore(JSON.parse(JSON.stringify(original.ioapic.save())));
    expect(runOps(copy, after)).toEqual(runOps(original, after));
    expect(copy.apics.map((apic) => apic.save())).toEqual(original.apics.map((apic) => apic.save()));
    expect(copy.signals[0]!.count('nmi')).toBeGreaterThanOrEqual(0);
  });

  test.prop([fc.array(anyOp, { maxLength: 200 })], { numRuns: 100 })('never throws, whatever the guest does', (ops) => {
    const rig = makeApics(2);
    expect(() => runOps(rig, ops)).not.toThrow();
    const state = rig.apics[0]!.save();
    rig.apics[1]!.restore(JSON.parse(JSON.stringify({ ...state, id: 1 })));
  });
});
