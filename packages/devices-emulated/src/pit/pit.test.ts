import { StateError } from '@tsvirt/interfaces';
import { ManualClock, RecordingIrqLine } from '@tsvirt/interfaces/testing';
import { describe, expect, it } from 'vitest';
import { Pit } from './pit.js';

const CH0 = 0;
const CH2 = 2;
const MODE = 3;

/** ns at which the n-th PIT edge (1,193,182 Hz) has happened, computed exactly with BigInt. */
function edgeTime(n: number): number {
  const ns = (BigInt(n) * 1_000_000_000n + 1_193_181n) / 1_193_182n;
  return Number(ns);
}

/** PIT edges counted by time `ns`. */
function ticksFrom(ns: number): number {
  return Number((BigInt(ns) * 1_193_182n) / 1_000_000_000n);
}

function setup(): { clock: ManualClock; irq: RecordingIrqLine; pit: Pit } {
  const clock = new ManualClock(0);
  const irq = new RecordingIrqLine();
  return { clock, irq, pit: new Pit({ clock, irq }) };
}

/** Counter 0 in mode 2 at HZ=250, as Linux's i8253 clockevent programs it; returns the count. */
function programTick(pit: Pit): number {
  pit.write(MODE, 1, 0x34);
  const latch = Math.floor((1_193_182 + 125) / 250);
  pit.write(CH0, 1, latch & 0xff);
  pit.write(CH0, 1, latch >> 8);
  return latch;
}

describe('Pit', () => {
  it("follows Linux pit_calibrate_tsc: counter 2, mode 0, OUT2 on port 0x61 bit 5 after 50 ms", () => {
    const { clock, pit } = setup();
    // Gate high, speaker off.
    pit.portB.write(0, 1, (pit.portB.read(0, 1) & ~0x02) | 0x01);
    pit.write(MODE, 1, 0xb0);
    const latch = Math.floor(1_193_182 / 20);
    pit.write(CH2, 1, latch & 0xff);
    pit.write(CH2, 1, latch >> 8);
    const start = clock.now();
    expect(pit.portB.read(0, 1) & 0x20).toBe(0);
    clock.advanceTo(start + edgeTime(latch) - 1);
    expect(pit.portB.read(0, 1) & 0x20).toBe(0);
    clock.advanceTo(start + edgeTime(latch) + 1000);
    expect(pit.portB.read(0, 1) & 0x20).toBe(0x20);
    expect(pit.portB.read(0, 1) & 0x03).toBe(0x01);
  });

  it('follows quick_pit_calibrate: the MSB of an unlatched LSB/MSB read falls once per 256 edges', () => {
    const { clock, pit } = setup();
    pit.portB.write(0, 1, 0x01);
    pit.write(MODE, 1, 0xb0);
    pit.write(CH2, 1, 0xff);
    pit.write(CH2, 1, 0xff);
    const start = clock.now();
    for (const i of [0, 1, 2, 50, 200]) {
      // Just after the edge that brings the count to 0xffff - 256*i - 1.
      clock.advanceTo(start + edgeTime(256 * i + 1));
      const lsb = pit.read(CH2, 1);
      const msb = pit.read(CH2, 1);
      expect((msb << 8) | lsb).toBe(0xffff - 256 * i - 1);
      expect(msb).toBe(0xff - i);
    }
  });

  it('raises IRQ 0 at HZ=250 in mode 2 the way the i8253 clockevent programs it', () => {
    const { clock, irq, pit } = setup();
    const latch = programTick(pit);
    const before = irq.raised;
    const start = clock.now();
    clock.advanceTo(start + edgeTime(latch * 250));
    expect(irq.raised - before).toBe(250);
    // The low pulse lasts one PIT clock, just before each reload.
    clock.advanceTo(start + edgeTime(latch * 251 - 1));
    expect(irq.level).toBe(false);
    clock.advanceTo(start + edgeTime(latch * 251));
    expect(irq.level).toBe(true);
  });

  it('in real time, a tick whose timer fires after the one-clock low pulse still raises IRQ 0 once', () => {
    const { clock, irq, pit } = setup();
    const latch = programTick(pit);
    const start = clock.now();
    const before = irq.raised;
    // Each timer is looked at 0.3 ms late, long after the 838 ns pulse: every tick still counts.
    for (let tick = 1; tick <= 10; tick++) clock.jumpTo(start + edgeTime(latch * tick) + 300_000);
    expect(irq.raised - before).toBe(10);
    expect(irq.level).toBe(true);
  });

  it('in real time, the ticks a stalled host missed become one interrupt, and the period keeps its phase (lost-tick policy: discard)', () => {
    const { clock, irq, pit } = setup();
    const latch = programTick(pit);
    const start = clock.now();
    const before = irq.raised;
    clock.jumpTo(start + 5_000_000_000);
    expect(irq.raised - before).toBe(1);
    // The next tick comes at the next multiple of the period, not a period after the stall.
    const nextTick = Math.ceil(ticksFrom(5_000_000_000) / latch) * latch;
    clock.jumpTo(start + edgeTime(nextTick) - 1);
    expect(irq.raised - before).toBe(1);
    clock.jumpTo(start + edgeTime(nextTick) + 1_000);
    expect(irq.raised - before).toBe(2);
  });

  it('a timer that fires on time never pulses the line twice', () => {
    const { clock, irq, pit } = setup();
    pit.write(MODE, 1, 0x34);
    pit.write(CH0, 1, 100);
    pit.write(CH0, 1, 0);
    const start = clock.now();
    const before = irq.raised;
    clock.advanceTo(start + edgeTime(100 * 50));
    expect(irq.raised - before).toBe(50);
  });

  it('mode 0 one-shot raises IRQ 0 once after the count', () => {
    const { clock, irq, pit } = setup();
    pit.write(MODE, 1, 0x30);
    expect(irq.level).toBe(false); // the control word drives OUT low in mode 0
    pit.write(CH0, 1, 100);
    pit.write(CH0, 1, 0);
    const start = clock.now();
    const raised = irq.raised;
    clock.advanceTo(start + edgeTime(99));
    expect(irq.level).toBe(false);
    clock.advanceTo(start + edgeTime(100));
    expect(irq.level).toBe(true);
    clock.advance(1_000_000_000);
    expect(irq.raised - raised).toBe(1);
  });

  it('mode 4 one-shot as the i8253 clockevent programs it: IRQ 0 rises one clock after the count', () => {
    const { clock, irq, pit } = setup();
    pit.write(MODE, 1, 0x38);
    const start = clock.now();
    pit.write(CH0, 1, 200);
    pit.write(CH0, 1, 0);
    const raised = irq.raised;
    clock.advanceTo(start + edgeTime(200));
    expect(irq.level).toBe(false); // the one-clock strobe
    expect(irq.raised).toBe(raised);
    clock.advanceTo(start + edgeTime(201));
    expect(irq.level).toBe(true);
    expect(irq.raised).toBe(raised + 1);
    // The next event: a new count restarts the counter.
    const next = clock.now();
    pit.write(CH0, 1, 50);
    pit.write(CH0, 1, 0);
    clock.advanceTo(next + edgeTime(ticksFrom(next) + 51) - next);
    expect(irq.raised).toBe(raised + 2);
  });

  it('latch command freezes the value until both bytes are read', () => {
    const { clock, pit } = setup();
    pit.write(MODE, 1, 0x34);
    pit.write(CH0, 1, 0x00);
    pit.write(CH0, 1, 0x10); // 0x1000
    const start = clock.now();
    clock.advanceTo(start + edgeTime(0x10));
    pit.write(MODE, 1, 0x00); // latch counter 0
    clock.advanceTo(start + edgeTime(0x100));
    expect(pit.read(CH0, 1)).toBe(0xf0);
    expect(pit.read(CH0, 1)).toBe(0x0f);
    // Unlatched now: the live value.
    expect(pit.read(CH0, 1)).toBe(0x00);
    expect(pit.read(CH0, 1)).toBe(0x0f);
  });

  it('read-back returns the status byte first, then the latched count', () => {
    const { clock, pit } = setup();
    pit.write(MODE, 1, 0x34);
    expect((pit.write(MODE, 1, 0xe2), pit.read(CH0, 1))).toBe(0x80 | 0x40 | 0x34); // OUT high, null count
    pit.write(CH0, 1, 0x00);
    pit.write(CH0, 1, 0x01);
    clock.advanceTo(clock.now() + edgeTime(3));
    pit.write(MODE, 1, 0xc2); // latch count and status of counter 0
    expect(pit.read(CH0, 1)).toBe(0x80 | 0x34);
    expect(pit.read(CH0, 1)).toBe(0xfd);
    expect(pit.read(CH0, 1)).toBe(0x00);
  });

  it('counts in BCD', () => {
    const { clock, pit } = setup();
    pit.write(MODE, 1, 0x31); // counter 0, LSB/MSB, mode 0, BCD
    pit.write(CH0, 1, 0x00);
    pit.write(CH0, 1, 0x10); // 1000
    clock.advanceTo(clock.now() + edgeTime(1));
    expect(pit.read(CH0, 1)).toBe(0x99);
    expect(pit.read(CH0, 1)).toBe(0x09);
  });

  it('mode 3 on counter 2 gives a square wave on port 0x61 bit 5 and stops with the gate low', () => {
    const { clock, pit } = setup();
    const events: boolean[] = [];
    const observed = new Pit({ clock, irq: new RecordingIrqLine(), observer: (e) => events.push(e.on) });
    observed.portB.write(0, 1, 0x03);
    expect(events).toEqual([true]);
    pit.portB.write(0, 1, 0x01);
    pit.write(MODE, 1, 0xb6);
    pit.write(CH2, 1, 100);
    pit.write(CH2, 1, 0);
    const start = clock.now();
    clock.advanceTo(start + edgeTime(49));
    expect(pit.portB.read(0, 1) & 0x20).toBe(0x20);
    clock.advanceTo(start + edgeTime(50));
    expect(pit.portB.read(0, 1) & 0x20).toBe(0);
    pit.portB.write(0, 1, 0x00);
    expect(pit.portB.read(0, 1) & 0x20).toBe(0x20); // gate low forces OUT high in mode 3
  });

  it('gate low suspends mode 0 counting on counter 2', () => {
    const { clock, pit } = setup();
    pit.portB.write(0, 1, 0x01);
    pit.write(MODE, 1, 0xb0);
    pit.write(CH2, 1, 0);
    pit.write(CH2, 1, 0x10);
    const start = clock.now();
    clock.advanceTo(start + edgeTime(0x100));
    pit.portB.write(0, 1, 0x00);
    clock.advance(1_000_000);
    pit.write(MODE, 1, 0x80);
    expect(pit.read(CH2, 1) | (pit.read(CH2, 1) << 8)).toBe(0x0f00);
  });

  it('toggles the refresh bit (port 0x61 bit 4) with time', () => {
    const { clock, pit } = setup();
    const seen = new Set<number>();
    for (let i = 0; i < 8; i++) {
      seen.add(pit.portB.read(0, 1) & 0x10);
      clock.advance(7_000);
    }
    expect([...seen].sort()).toEqual([0, 0x10]);
  });

  it('rejects malformed saved state and keeps its own', () => {
    const { pit } = setup();
    const saved = pit.save();
    expect(() => pit.restore({ ...saved, version: 0 })).toThrow(StateError);
    expect(() => pit.restore({ ...saved, channels: saved.channels.slice(0, 2) })).toThrow(StateError);
    expect(() => pit.restore({ ...saved, channels: [{ ...saved.channels[0], mode: 6 }, saved.channels[1], saved.channels[2]] })).toThrow(StateError);
    expect(() => pit.restore({ ...saved, portB: 1 })).toThrow(StateError); // gate bit disagrees with counter 2
    expect(pit.save()).toEqual(saved);
  });
});
