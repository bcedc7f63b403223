import { fc, test } from '@fast-check/vitest';
import { ManualClock, RecordingIrqLine } from '@tsvirt/interfaces/testing';
import { expect } from 'vitest';
import { Pit } from './pit.js';

/** ns of PIT edge `n` (1,193,182 Hz), exactly. */
function edgeTime(n: number): number {
  return Number((BigInt(n) * 1_000_000_000n + 1_193_181n) / 1_193_182n);
}

/**
 * A clock-by-clock model of one 8254 counter from the datasheet: the
 * counting element really decrements on every edge.
 */
class ModelCounter {
  mode = 3;
  modeBits = 3;
  bcd = false;
  rw = 3;
  readHigh = false;
  writeHigh = false;
  writeLow = 0;
  latched: number[] = [];
  status: number | undefined;
  initial = 0x10000;
  ce = 0x10000;
  loaded = true;
  triggered = false;
  out = true;
  /** The power-on reset loads every counter at edge 0. */
  nullCount = true;
  strobed = false;
  phase = 0;

  constructor(public gate: boolean) {}

  get modulus(): number {
    return this.bcd ? 10000 : 0x10000;
  }

  /** What the counting element holds after a control word: it stops, keeping its bits. */
  held = 0;

  encoded(): number {
    if (!this.loaded) return this.held;
    const v = this.ce % this.modulus;
    if (!this.bcd) return v;
    return parseInt(String(v).padStart(4, '0'), 16);
  }

  /** Mode 3 with an odd count: the model tracks OUT only (the CE sequence for odd counts is not checked). */
  valueKnown(): boolean {
    if (!this.loaded) return this.held >= 0;
    return !(this.mode === 3 && this.initial % 2 === 1);
  }

  /** A written count reaches the counting element at the next edge, which clears NULL COUNT. */
  pendingLoad = true;

  tick(): void {
    if (this.pendingLoad) {
      this.pendingLoad = false;
      this.nullCount = false;
    }
    if (!this.loaded) return;
    const m = this.modulus;
    switch (this.mode) {
      case 0:
        if (!this.gate) return;
        this.ce = (this.ce - 1 + m) % m;
        if (this.ce === 0) this.out = true;
        return;
      case 1:
        if (!this.triggered) return;
        this.ce = (this.ce - 1 + m) % m;
        if (this.ce === 0) this.out = true;
        return;
      case 4:
      case 5:
        if (this.mode === 4 ? !this.gate : !this.triggered) return;
        this.ce = (this.ce - 1 + m) % m;
        if (this.ce === 0 && !this.strobed) {
          this.out = false;
          this.strobed = true;
        } else this.out = true;
        return;
      case 2:
        if (!this.gate) return;
        this.ce--;
        if (this.initial < 2) this.ce = this.initial;
        else if (this.ce === 1) this.out = false;
        else if (this.ce === 0) {
          this.ce = this.initial;
          this.out = true;
        }
        return;
      default:
        if (!this.gate) return;
        if (this.initial < 2) return;
        this.phase = (this.phase + 1) % this.initial;
        this.out = this.phase < Math.floor((this.initial + 1) / 2);
        this.ce -= 2;
        if (this.ce <= 0) this.ce = this.initial;
    }
  }

  start(): void {
    this.ce = this.initial;
    this.phase = 0;
    this.strobed = false;
    this.out = this.mode !== 0 && this.mode !== 1;
  }

  load(raw: number): void {
    const value = this.bcd ? ((raw >> 12) & 15) * 1000 + ((raw >> 8) & 15) * 100 + ((raw >> 4) & 15) * 10 + (raw & 15) : raw;
    this.initial = value === 0 ? (this.bcd ? 10000 : 0x10000) : value;
    this.loaded = true;
    this.nullCount = true;
    this.pendingLoad = true;
    this.triggered = false;
    this.start();
    if (this.mode === 1 || this.mode === 5) this.out = true;
  }

  control(value: number): void {
    this.held = this.valueKnown() ? this.encoded() : -1;
    this.rw = (value >> 4) & 3;
    this.modeBits = (value >> 1) & 7;
    this.mode = this.modeBits > 5 ? this.modeBits - 4 : this.modeBits;
    this.bcd = (value & 1) === 1;
    this.readHigh = false;
    this.writeHigh = false;
    this.loaded = false;
    this.triggered = false;
    this.nullCount = true;
    this.pendingLoad = false;
    this.out = this.mode !== 0;
  }

  latch(): void {
    if (this.latched.length > 0) return;
    // -1 marks bytes of a value the model does not predict (mode 3, odd count).
    const v = this.valueKnown() ? this.encoded() : -1;
    const low = v < 0 ? -1 : v & 0xff;
    const high = v < 0 ? -1 : v >> 8;
    this.latched = this.rw === 1 ? [low] : this.rw === 2 ? [high] : [low, high];
  }

  latchStatus(): void {
    if (this.status !== undefined) return;
    const out = this.loaded && (this.mode === 2 || this.mode === 3) && !this.gate ? true : this.out;
    this.status = (out ? 0x80 : 0) | (this.nullCount ? 0x40 : 0) | (this.rw << 4) | (this.modeBits << 1) | (this.bcd ? 1 : 0);
  }

  read(): number | undefined {
    if (this.status !== undefined) {
      const s = this.status;
      this.status = undefined;
      return s;
    }
    if (this.latched.length > 0) {
      const byte = this.latched.shift()!;
      return byte < 0 ? undefined : byte;
    }
    const known = this.valueKnown();
    const v = this.encoded();
    let byte: number;
    if (this.rw === 1) byte = v & 0xff;
    else if (this.rw === 2) byte = v >> 8;
    else {
      byte = this.readHigh ? v >> 8 : v & 0xff;
      this.readHigh = !this.readHigh;
    }
    return known ? byte : undefined;
  }

  write(value: number): void {
    if (this.rw === 1) this.load(value);
    else if (this.rw === 2) this.load(value << 8);
    else if (!this.writeHigh) {
      this.writeLow = value;
      this.writeHigh = true;
      if (this.mode === 0 && this.loaded) {
        this.held = this.valueKnown() ? this.encoded() : -1;
        this.loaded = false;
        this.out = false;
      }
    } else {
      this.writeHigh = false;
      this.load(this.writeLow | (value << 8));
    }
  }

  setGate(level: boolean): void {
    if (level === this.gate) return;
    this.gate = level;
    if (!this.loaded) return;
    if (level && this.mode !== 0 && this.mode !== 4) {
      this.triggered = true;
      this.start();
    }
  }

  output(): boolean {
    if (this.loaded && (this.mode === 2 || this.mode === 3) && !this.gate) return true;
    return this.out;
  }
}

type Op =
  | { op: 'control'; value: number }
  | { op: 'write'; channel: number; value: number }
  | { op: 'read'; channel: number }
  | { op: 'portB'; value: number }
  | { op: 'readPortB' }
  | { op: 'advance'; ticks: number };

const channelNumber = fc.integer({ min: 0, max: 2 });
const ops: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('control' as const), value: fc.integer({ min: 0, max: 0xff }) }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('write' as const), channel: channelNumber, value: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constant(0)) }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('read' as const), channel: channelNumber }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('portB' as const), value: fc.integer({ min: 0, max: 0xff }) }), weight: 2 },
  { arbitrary: fc.constant({ op: 'readPortB' as const }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('advance' as const), ticks: fc.integer({ min: 0, max: 90 }) }), weight: 4 },
);

test.prop([fc.array(ops, { maxLength: 60, size: 'max' })], { numRuns: 300 })('the PIT agrees with a clock-by-clock datasheet model', (sequence) => {
  const clock = new ManualClock(0);
  const irq = new RecordingIrqLine();
  const pit = new Pit({ clock, irq });
  const model = [new ModelCounter(true), new ModelCounter(true), new ModelCounter(false)];
  let portB = 0;
  let ticks = 0;
  for (const o of sequence) {
    switch (o.op) {
      case 'control': {
        pit.write(3, 1, o.value);
        const select = o.value >> 6;
        if (select < 3) {
          if (((o.value >> 4) & 3) === 0) model[select]!.latch();
          else model[select]!.control(o.value);
        } else {
          for (let c = 0; c < 3; c++) {
            if (!(o.value & (2 << c))) continue;
            if (!(o.value & 0x20)) model[c]!.latch();
            if (!(o.value & 0x10)) model[c]!.latchStatus();
          }
        }
        break;
      }
      case 'write':
        pit.write(o.channel, 1, o.value);
        model[o.channel]!.write(o.value);
        break;
      case 'read': {
        const got = pit.read(o.channel, 1);
        const expected = model[o.channel]!.read();
        if (expected !== undefined) expect(got).toBe(expected);
        break;
      }
      case 'portB':
        pit.portB.write(0, 1, o.value);
        portB = o.value & 0x0f;
        model[2]!.setGate((o.value & 1) === 1);
        break;
      case 'readPortB':
        expect(pit.portB.read(0, 1) & ~0x10).toBe(portB | (model[2]!.output() ? 0x20 : 0));
        break;
      case 'advance':
        for (let i = 0; i < o.ticks; i++) for (const m of model) m.tick();
        ticks += o.ticks;
        clock.advanceTo(edgeTime(ticks));
        break;
    }
    expect(irq.level).toBe(model[0]!.output());
  }
});

function replay(pit: Pit, clock: ManualClock, o: Op): number | undefined {
  switch (o.op) {
    case 'control':
      pit.write(3, 1, o.value);
      return undefined;
    case 'write':
      pit.write(o.channel, 1, o.value);
      return undefined;
    case 'read':
      return pit.read(o.channel, 1);
    case 'portB':
      pit.portB.write(0, 1, o.value);
      return undefined;
    case 'readPortB':
      return pit.portB.read(0, 1);
    case 'advance':
      clock.advance(o.ticks * 997);
      return undefined;
  }
}

test.prop([fc.array(ops, { maxLength: 30, size: 'max' }), fc.array(ops, { maxLength: 30, size: 'max' })], { numRuns: 150 })('save → restore into a fresh PIT → continue equals continue', (before, after) => {
  const clockA = new ManualClock(0);
  const irqA = new RecordingIrqLine();
  const original = new Pit({ clock: clockA, irq: irqA });
  for (const o of before) replay(original, clockA, o);
  const clockB = new ManualClock(clockA.now());
  const irqB = new RecordingIrqLine();
  const copy = new Pit({ clock: clockB, irq: irqB });
  copy.restore(JSON.parse(JSON.stringify(original.save())));
  const raisedA = irqA.raised;
  const raisedB = irqB.raised;
  for (const o of after) {
    expect(replay(copy, clockB, o)).toBe(replay(original, clockA, o));
    expect(irqB.level).toBe(irqA.level);
  }
  expect(irqB.raised - raisedB).toBe(irqA.raised - raisedA);
  expect(copy.save()).toEqual(original.save());
});

test.prop([fc.array(fc.record({ port: fc.integer({ min: 0, max: 4 }), size: fc.constantFrom(1 as const, 2 as const, 4 as const), value: fc.integer({ min: 0, max: 0xffffffff }), write: fc.boolean(), wait: fc.nat(3_000_000) }), { maxLength: 150, size: 'max' })], { numRuns: 200 })(
  'no access sequence throws out of the PIT',
  (accesses) => {
    const clock = new ManualClock(0);
    const pit = new Pit({ clock, irq: new RecordingIrqLine() });
    for (const a of accesses) {
      const device = a.port === 4 ? pit.portB : pit;
      const offset = a.port === 4 ? 0 : a.size === 1 ? a.port : 0;
      const value = a.size === 4 ? a.value : a.value & ((1 << (8 * a.size)) - 1);
      if (a.write) device.write(offset, a.size, value);
      else {
        const read = device.read(offset, a.size);
        expect(read).toBeGreaterThanOrEqual(0);
        expect(read).toBeLessThanOrEqual(a.size === 4 ? 0xffffffff : (1 << (8 * a.size)) - 1);
      }
      clock.advance(a.wait);
    }
  },
);
