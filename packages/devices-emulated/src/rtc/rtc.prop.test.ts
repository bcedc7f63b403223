import { fc, test } from '@fast-check/vitest';
import { ManualClock, RecordingIrqLine } from '@tsvirt/interfaces/testing';
import { expect } from 'vitest';
import { Rtc } from './rtc.js';

function ports(rtc: Rtc) {
  return {
    reg: (i: number) => {
      rtc.write(0, 1, i);
      return rtc.read(1, 1);
    },
    set: (i: number, v: number) => {
      rtc.write(0, 1, i);
      rtc.write(1, 1, v);
    },
  };
}

const startTime = fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2090, 0, 1) });

test.prop([startTime, fc.nat(400 * 86_400_000), fc.constantFrom(0x00, 0x02, 0x04, 0x06)], { numRuns: 300 })(
  'time registers show start + elapsed, in every format, as an independent calendar says',
  (start, elapsedMs, format) => {
    const clock = new ManualClock(0);
    const rtc = new Rtc({ clock, irq: new RecordingIrqLine(), startTime: start });
    const { reg, set } = ports(rtc);
    set(0x0b, format);
    clock.advance(elapsedMs * 1_000_000);
    const expected = new Date(Math.floor((start + elapsedMs) / 1000) * 1000);
    const binary = (format & 4) !== 0;
    const decode = (v: number) => (binary ? v : (v >> 4) * 10 + (v & 15));
    let hour = expected.getUTCHours();
    let hourRegister = reg(0x04);
    if (!(format & 2)) {
      expect(decode(hourRegister & 0x7f)).toBe(hour % 12 || 12);
      expect(hourRegister & 0x80).toBe(hour >= 12 ? 0x80 : 0);
      hour = 0;
      hourRegister = 0;
    }
    expect(decode(hourRegister)).toBe(hour);
    expect(decode(reg(0x00))).toBe(expected.getUTCSeconds());
    expect(decode(reg(0x02))).toBe(expected.getUTCMinutes());
    expect(decode(reg(0x06))).toBe(expected.getUTCDay() + 1);
    expect(decode(reg(0x07))).toBe(expected.getUTCDate());
    expect(decode(reg(0x08))).toBe(expected.getUTCMonth() + 1);
    expect(decode(reg(0x32)) * 100 + decode(reg(0x09))).toBe(expected.getUTCFullYear());
    // UIP exactly in the last 8/32768 s of each second.
    const phaseNs = ((start + elapsedMs) % 1000) * 1_000_000;
    expect((reg(0x0a) & 0x80) !== 0).toBe(phaseNs >= 1e9 - (8 * 1e9) / 32768);
  },
);

type Op = { op: 'advance'; ns: number } | { op: 'rate'; rs: number } | { op: 'enable'; bits: number } | { op: 'readC' } | { op: 'alarm'; second: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('advance' as const), ns: fc.oneof(fc.nat(5_000_000), fc.nat(3_000_000_000)) }), weight: 5 },
  { arbitrary: fc.record({ op: fc.constant('rate' as const), rs: fc.integer({ min: 0, max: 15 }) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('enable' as const), bits: fc.constantFrom(0, 0x10, 0x20, 0x40, 0x30, 0x50, 0x60, 0x70) }), weight: 2 },
  { arbitrary: fc.constant({ op: 'readC' as const }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('alarm' as const), second: fc.oneof(fc.integer({ min: 0, max: 59 }), fc.constant(0xff)) }), weight: 1 },
);

/** Events happen at epoch + k·interval; how many k fall in (from, to]? Exact with BigInt (interval = num/den ns). */
function crossed(from: number, to: number, epoch: number, num: bigint, den: bigint): bigint {
  const k = (t: number) => {
    const x = BigInt(t - epoch) * den;
    return x >= 0n ? x / num : -((-x + num - 1n) / num);
  };
  return k(to) - k(from);
}

test.prop([startTime, fc.array(op, { maxLength: 40, size: 'max' })], { numRuns: 300 })('register C flags and IRQ 8 follow a datasheet event model', (start, ops) => {
  const clock = new ManualClock(0);
  const irq = new RecordingIrqLine();
  const rtc = new Rtc({ clock, irq, startTime: start });
  const { reg, set } = ports(rtc);
  // Model state: the divider epoch is the last whole second of the start time.
  const epoch = -(start % 1000) * 1_000_000;
  const startSeconds = Math.floor(start / 1000);
  let rs = 6;
  let enables = 0;
  let alarmSecond = 0xff;
  let flags = 0;
  let last = 0;
  set(0x01, 0xff);
  set(0x03, 0xff);
  set(0x05, 0xff);
  const evaluate = () => {
    const now = clock.now();
    if (rs !== 0) {
      const period = BigInt(rs <= 2 ? 1 << (rs + 6) : 1 << (rs - 1));
      if (crossed(last, now, epoch, period * 1_000_000_000n, 32768n) > 0n) flags |= 0x40;
    }
    const updates = Number(crossed(last, now, epoch, 1_000_000_000n, 1n));
    if (updates > 0) {
      flags |= 0x10;
      const firstSecond = startSeconds + Number(crossed(epoch, last, epoch, 1_000_000_000n, 1n)) + 1;
      for (let s = firstSecond; s < firstSecond + Math.min(updates, 60); s++) if (alarmSecond === 0xff || s % 60 === alarmSecond) flags |= 0x20;
    }
    last = now;
  };
  for (const o of ops) {
    switch (o.op) {
      case 'advance':
        clock.advance(o.ns);
        evaluate();
        break;
      case 'rate':
        evaluate();
        set(0x0a, 0x20 | o.rs);
        rs = o.rs;
        break;
      case 'enable':
        evaluate();
        set(0x0b, 0x02 | o.bits);
        enables = o.bits;
        break;
      case 'alarm':
        evaluate();
        set(0x01, o.second === 0xff ? 0xff : ((o.second / 10) << 4) | o.second % 10);
        alarmSecond = o.second;
        break;
      case 'readC':
        evaluate();
        // IRQF is the OR of the enabled flags.
        expect(reg(0x0c)).toBe(flags | (flags & enables & 0x70 ? 0x80 : 0));
        flags = 0;
        break;
    }
    expect(irq.level).toBe((flags & enables & 0x70) !== 0);
  }
});

const anyOp = fc.oneof(
  fc.record({ kind: fc.constant('index' as const), value: fc.integer({ min: 0, max: 0xff }) }),
  fc.record({ kind: fc.constant('data' as const), value: fc.integer({ min: 0, max: 0xff }) }),
  fc.record({ kind: fc.constant('read' as const), value: fc.integer({ min: 0, max: 1 }) }),
  fc.record({ kind: fc.constant('wide' as const), value: fc.integer({ min: 0, max: 0xffffffff }) }),
  fc.record({ kind: fc.constant('advance' as const), value: fc.nat(2_000_000_000) }),
);

function drive(rtc: Rtc, clock: ManualClock, o: { kind: string; value: number }): number | undefined {
  switch (o.kind) {
    case 'index':
      rtc.write(0, 1, o.value);
      return undefined;
    case 'data':
      rtc.write(1, 1, o.value);
      return undefined;
    case 'read':
      return rtc.read(o.value, 1);
    case 'wide':
      rtc.write(0, 2, o.value & 0xffff);
      return rtc.read(0, 4);
    default:
      clock.advance(o.value);
      return undefined;
  }
}

test.prop([startTime, fc.array(anyOp, { maxLength: 40, size: 'max' }), fc.array(anyOp, { maxLength: 40, size: 'max' })], { numRuns: 200 })(
  'save → restore into a fresh RTC → continue equals continue',
  (start, before, after) => {
    const clockA = new ManualClock(0);
    const irqA = new RecordingIrqLine();
    const original = new Rtc({ clock: clockA, irq: irqA, startTime: start });
    for (const o of before) drive(original, clockA, o);
    const clockB = new ManualClock(clockA.now());
    const irqB = new RecordingIrqLine();
    const copy = new Rtc({ clock: clockB, irq: irqB, startTime: 0 });
    copy.restore(JSON.parse(JSON.stringify(original.save())));
    expect(irqB.level).toBe(irqA.level);
    for (const o of after) {
      expect(drive(copy, clockB, o)).toBe(drive(original, clockA, o));
      expect(irqB.level).toBe(irqA.level);
    }
    expect(copy.save()).toEqual(original.save());
  },
);

test.prop([startTime, fc.array(anyOp, { maxLength: 200, size: 'max' })], { numRuns: 200 })('no access sequence throws out of the RTC', (start, ops) => {
  const clock = new ManualClock(0);
  const rtc = new Rtc({ clock, irq: new RecordingIrqLine(), startTime: start });
  for (const o of ops) {
    const value = drive(rtc, clock, o);
    if (value !== undefined) expect(value).toBeGreaterThanOrEqual(0);
  }
  expect(Number.isFinite(rtc.currentTime())).toBe(true);
});
