import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import { PicPair } from './pic-pair.js';

/**
 * An independent model of one 8259A from the datasheet: priorities are an
 * explicit list (highest first) that rotation reorders.
 */
class ModelChip {
  irr = 0;
  imr = 0;
  isr = 0;
  input = 0;
  elcr = 0;
  order = [0, 1, 2, 3, 4, 5, 6, 7];
  base = 0;
  expecting: 'ready' | 'icw2' | 'icw3' | 'icw4' = 'ready';
  single = false;
  icw4 = false;
  ltim = false;
  aeoi = false;
  rotateAeoi = false;
  sfnm = false;
  smm = false;
  readIsr = false;
  poll = false;

  constructor(readonly master: boolean) {}

  level(irq: number): boolean {
    return this.ltim || ((this.elcr >> irq) & 1) === 1;
  }

  set(irq: number, high: boolean): void {
    const bit = 1 << irq;
    if (this.master && irq === 2 && !this.single && !this.level(irq)) {
      // Cascade input: latched while the slave's INT is high, cleared by INTA only.
      if (high) this.irr |= bit;
    } else if (this.level(irq)) this.irr = high ? this.irr | bit : this.irr & ~bit;
    else if (high && !(this.input & bit)) this.irr |= bit;
    this.input = high ? this.input | bit : this.input & ~bit;
  }

  lowest(level: number): void {
    this.order = Array.from({ length: 8 }, (_, i) => (level + 1 + i) & 7);
  }

  best(): number {
    const requests = this.order.filter((l) => ((this.irr & ~this.imr) >> l) & 1);
    if (requests.length === 0) return -1;
    const blocking = this.order.filter((l) => (this.isr >> l) & 1 && !(this.smm && (this.imr >> l) & 1) && !(this.sfnm && this.master && l === 2));
    if (blocking.length > 0 && this.order.indexOf(blocking[0]!) <= this.order.indexOf(requests[0]!)) return -1;
    return requests[0]!;
  }

  ack(irq: number): void {
    if (this.aeoi) {
      if (this.rotateAeoi) this.lowest(irq);
    } else this.isr |= 1 << irq;
    if (!this.level(irq)) this.irr &= ~(1 << irq);
  }

  command(value: number): void {
    if (value & 0x10) {
      Object.assign(this, { imr: 0, isr: 0, input: 0, smm: false, readIsr: false, poll: false, aeoi: false, rotateAeoi: false, sfnm: false });
      this.irr &= this.elcr;
      this.lowest(7);
      this.ltim = (value & 8) !== 0;
      this.single = (value & 2) !== 0;
      this.icw4 = (value & 1) !== 0;
      this.expecting = 'icw2';
      return;
    }
    if (value & 0x08) {
      if (value & 4) this.poll = true;
      if (value & 2) this.readIsr = (value & 1) === 1;
      if (value & 0x40) this.smm = (value & 0x20) !== 0;
      return;
    }
    const op = value >> 5;
    const l = value & 7;
    if (op === 0 || op === 4) this.rotateAeoi = op === 4;
    if (op === 1 || op === 5) {
      const victim = this.order.find((x) => (this.isr >> x) & 1 && !(this.smm && (this.imr >> x) & 1));
      if (victim !== undefined) {
        this.isr &= ~(1 << victim);
        if (op === 5) this.lowest(victim);
      }
    }
    if (op === 3 || op === 7) this.isr &= ~(1 << l);
    if (op === 7 || op === 6) this.lowest(l);
  }

  data(value: number): void {
    if (this.expecting === 'icw2') {
      this.base = value & 0xf8;
      this.expecting = this.single ? (this.icw4 ? 'icw4' : 'ready') : 'icw3';
    } else if (this.expecting === 'icw3') this.expecting = this.icw4 ? 'icw4' : 'ready';
    else if (this.expecting === 'icw4') {
      this.aeoi = (value & 2) !== 0;
      this.sfnm = (value & 0x10) !== 0;
      this.expecting = 'ready';
    } else this.imr = value;
  }

  read(offset: number): number {
    if (this.poll) {
      this.poll = false;
      const irq = this.best();
      if (irq < 0) return 0;
      this.ack(irq);
      return 0x80 | irq;
    }
    return offset === 1 ? this.imr : this.readIsr ? this.isr : this.irr;
  }
}

class ModelPair {
  readonly chips = [new ModelChip(true), new ModelChip(false)] as const;

  cascade(): void {
    this.chips[0].set(2, this.chips[1].best() >= 0);
  }

  ack(): number {
    const [m, s] = this.chips;
    const irq = m.best();
    if (irq < 0) return m.base + 7;
    m.ack(irq);
    if (irq !== 2 || m.single) return m.base + irq;
    const slaveIrq = s.best();
    if (slaveIrq >= 0) s.ack(slaveIrq);
    return s.base + (slaveIrq < 0 ? 7 : slaveIrq);
  }
}

type Op =
  | { op: 'irq'; irq: number; high: boolean }
  | { op: 'pulse'; irq: number }
  | { op: 'cmd' | 'data'; chip: 0 | 1; value: number }
  | { op: 'read'; chip: 0 | 1; offset: 0 | 1 }
  | { op: 'ack' }
  | { op: 'elcr'; value: number };

const chip = fc.constantFrom(0 as const, 1 as const);
const irq = fc.integer({ min: 0, max: 15 }).filter((n) => n !== 2);
const command = fc.oneof(
  fc.integer({ min: 0, max: 0x0b }).map((bits) => 0x10 | bits), // ICW1
  fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 7 })).map(([cmd, level]) => (cmd << 5) | level), // OCW2
  fc.integer({ min: 0, max: 0x67 }).map((bits) => 0x08 | (bits & 0x67)), // OCW3
);
const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('irq' as const), irq, high: fc.boolean() }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('pulse' as const), irq }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('cmd' as const), chip, value: command }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('data' as const), chip, value: fc.integer({ min: 0, max: 0xff }) }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('read' as const), chip, offset: fc.constantFrom(0 as const, 1 as const) }), weight: 3 },
  { arbitrary: fc.constant({ op: 'ack' as const }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('elcr' as const), value: fc.integer({ min: 0, max: 0xffff }) }), weight: 1 },
);

/** Applies one op to the device; returns what the guest or CPU observed. */
function applyDevice(pic: PicPair, o: Op): number | undefined {
  const device = (c: 0 | 1) => (c === 0 ? pic.master : pic.slave);
  switch (o.op) {
    case 'irq':
      pic.irqLine(o.irq).setLevel(o.high);
      return undefined;
    case 'pulse':
      pic.irqLine(o.irq).pulse();
      return undefined;
    case 'cmd':
      device(o.chip).write(0, 1, o.value);
      return undefined;
    case 'data':
      device(o.chip).write(1, 1, o.value);
      return undefined;
    case 'read':
      return device(o.chip).read(o.offset, 1);
    case 'ack':
      return pic.acknowledge();
    case 'elcr':
      pic.setTriggerModes(o.value);
      return undefined;
  }
}

function applyModel(model: ModelPair, o: Op): number | undefined {
  const [m, s] = model.chips;
  let result: number | undefined;
  switch (o.op) {
    case 'irq':
      (o.irq < 8 ? m : s).set(o.irq & 7, o.high);
      break;
    case 'pulse':
      (o.irq < 8 ? m : s).set(o.irq & 7, true);
      model.cascade();
      (o.irq < 8 ? m : s).set(o.irq & 7, false);
      break;
    case 'cmd':
      model.chips[o.chip].command(o.value);
      break;
    case 'data':
      model.chips[o.chip].data(o.value);
      break;
    case 'read':
      result = model.chips[o.chip].read(o.offset);
      break;
    case 'ack':
      result = model.ack();
      break;
    case 'elcr':
      m.elcr = o.value & 0xf8;
      s.elcr = (o.value >> 8) & 0xde;
      break;
  }
  model.cascade();
  return result;
}

test.prop([fc.array(op, { maxLength: 80, size: 'max' })], { numRuns: 400 })('the PIC pair agrees with a datasheet model on reads, INTA vectors and INT', (ops) => {
  const model = new ModelPair();
  const changes: boolean[] = [];
  const pic = new PicPair({ onInterruptChanged: (up) => changes.push(up) });
  let intr = false;
  for (const o of ops) {
    expect(applyDevice(pic, o)).toBe(applyModel(model, o));
    const expected = model.chips[0].best() >= 0;
    expect(pic.pending()).toBe(expected);
    if (expected !== intr) {
      intr = expected;
      expect(changes.at(-1)).toBe(expected);
    }
  }
});

test.prop([fc.array(op, { maxLength: 40, size: 'max' }), fc.array(op, { maxLength: 40, size: 'max' })], { numRuns: 200 })('save → restore into a fresh pair → continue equals continue', (before, after) => {
  const original = new PicPair();
  for (const o of before) applyDevice(original, o);
  const copy = new PicPair();
  copy.restore(JSON.parse(JSON.stringify(original.save())));
  for (const o of after) {
    expect(applyDevice(copy, o)).toBe(applyDevice(original, o));
    expect(copy.pending()).toBe(original.pending());
  }
  expect(copy.save()).toEqual(original.save());
});

const access = fc.record({
  target: fc.constantFrom('master', 'slave', 'elcr', 'irq', 'ack') ,
  offset: fc.integer({ min: 0, max: 1 }),
  size: fc.constantFrom(1 as const, 2 as const, 4 as const),
  value: fc.integer({ min: 0, max: 0xffffffff }),
  write: fc.boolean(),
});

test.prop([fc.array(access, { maxLength: 200, size: 'max' })], { numRuns: 200 })('no access sequence throws out of the PIC', (accesses) => {
  const pic = new PicPair();
  for (const a of accesses) {
    if (a.target === 'irq') pic.irqLine(a.value % 16).setLevel(a.write);
    else if (a.target === 'ack') pic.acknowledge();
    else {
      const device = pic[a.target];
      const offset = a.size === 1 ? a.offset : 0;
      if (a.write) device.write(offset, a.size, a.size === 4 ? a.value : a.value & ((1 << (8 * a.size)) - 1));
      else expect(device.read(offset, a.size)).toBeGreaterThanOrEqual(0);
    }
  }
  const vector = pic.acknowledge();
  expect(vector).toBeGreaterThanOrEqual(0);
  expect(vector).toBeLessThanOrEqual(0xff);
});
